"""Checks that money formatting lives in one place: money.format_cents."""

import ast
import inspect

import pytest

import money
import reports

REPORT_FUNCTIONS = ["invoice_line", "invoice_summary", "refund_notice"]


def called_names(node: ast.AST) -> set[str]:
    """Names of everything called inside ``node`` (``f()`` and ``mod.f()`` alike)."""
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                names.add(call.func.id)
            elif isinstance(call.func, ast.Attribute):
                names.add(call.func.attr)
    return names


def test_money_provides_format_cents() -> None:
    assert callable(getattr(money, "format_cents", None)), "money.format_cents is missing"


@pytest.mark.parametrize("name", REPORT_FUNCTIONS)
def test_report_uses_format_cents(name: str) -> None:
    tree = ast.parse(inspect.getsource(getattr(reports, name)))
    assert "format_cents" in called_names(tree)


def test_reports_no_longer_formats_money_inline() -> None:
    tree = ast.parse(inspect.getsource(reports))
    assert "divmod" not in called_names(tree)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "format_cents" not in defined, "define format_cents in money.py, not reports.py"


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "$0.00"), (7, "$0.07"), (1999, "$19.99"), (-123456, "-$1,234.56")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert money.format_cents(cents) == text
