"""How a p-value is written, wherever one is: in a comparison's report line and reasons, the
terminal's details, the markdown and the HTML report. Light: no numpy, no scipy."""

from __future__ import annotations

#: Below this a p-value is printed as a bound: the tails of approximations that far out (the
#: normal for large rank tests, t for Welch and Brunner-Munzel) are not credible digits.
P_FLOOR = 1e-4


def format_p(p: float | None) -> str:
    """A p-value as reports print it: three decimals, powers of ten below 0.001, and the bound
    ``<1e-04`` below 1e-4 (never ``0e+00``); ``-`` when there is none."""
    if p is None or p != p:  # None or nan
        return "-"
    if p < P_FLOOR:
        return f"<{P_FLOOR:.0e}"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def p_equals(p: float | None, *, spaced: bool = False) -> str:
    """``p=0.003``, or ``p<1e-04`` for a bound (``p = 0.003``, ``p < 1e-04`` when spaced)."""
    text = format_p(p)
    if text.startswith("<"):
        return f"p {text[0]} {text[1:]}" if spaced else f"p{text}"
    return f"p = {text}" if spaced else f"p={text}"
