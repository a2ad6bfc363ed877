"""Mutation score of the analysis core, overall and for single-operator/single-constant mutants.

Run after ``mutmut run`` from the repository root (docs/testing.md)::

    python benchmarks/mutation_score.py            # the scores
    python benchmarks/mutation_score.py --survivors  # and each survivor, its kind and its diff

mutmut makes more kinds of mutant than the gate's bar counts. Each mutant's kind is read from
its diff against the original function (libcst, which mutmut itself uses): the smallest node
that differs, and what holds it.

Counted by the bar ("single operator or constant"):

* ``operator``: an arithmetic, comparison, boolean, ``is``/``in`` or augmented-assignment
  operator swapped, a ``not`` removed, ``x += y`` made ``x = y``;
* ``number``: a numeric literal changed (mutmut adds 1);
* ``boolean``: ``True`` and ``False`` swapped;
* ``none``: an assignment's value replaced by ``None`` (or ``None`` by ``""``);
* ``ternary``: a conditional expression forced down one branch (``(c) and False``, ``(c) or True``).

Not counted (reported apart): ``string`` (a literal made ``"XX..XX"`` or re-cased: message text,
checked where a test asserts the whole line), ``argument`` (a call's argument replaced by
``None`` or removed) and anything else (``other``).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tokenize
from collections import Counter
from pathlib import Path

import libcst as cst
from mutmut.mutation.diff_apply import get_diff_for_mutant, read_mutants_module
from mutmut.stats import status_by_exit_code

KINDS_COUNTED = ("operator", "number", "boolean", "none", "ternary")
KINDS_OTHER = ("string", "argument", "other")
OPERATORS = (
    cst.BaseBinaryOp,
    cst.BaseBooleanOp,
    cst.BaseCompOp,
    cst.BaseAugOp,
    cst.BaseUnaryOp,
)


def _smallest_difference(
    a: cst.CSTNode, b: cst.CSTNode, parents: tuple[cst.CSTNode, ...] = ()
) -> tuple[cst.CSTNode, cst.CSTNode, tuple[cst.CSTNode, ...]]:
    """The innermost pair of nodes that differ, and the original's ancestors."""
    if type(a) is not type(b):
        return a, b, parents
    ca, cb = a.children, b.children
    if len(ca) != len(cb):
        return a, b, parents
    differing = [(x, y) for x, y in zip(ca, cb, strict=True) if not x.deep_equals(y)]
    if len(differing) != 1:
        return a, b, parents
    x, y = differing[0]
    return _smallest_difference(x, y, (*parents, a))


def kind(orig: cst.FunctionDef, mutant: cst.FunctionDef) -> str:
    """The kind of the single mutation between ``orig`` and ``mutant``."""
    same = cst.Name("f")  # the generated copies are named apart
    a, b, parents = _smallest_difference(
        orig.with_changes(name=same), mutant.with_changes(name=same)
    )
    parent = parents[-1] if parents else None
    if isinstance(a, OPERATORS) or isinstance(b, OPERATORS):
        return "operator"
    if isinstance(a, cst.UnaryOperation) or isinstance(b, cst.UnaryOperation):
        return "operator"  # ``not x`` -> ``x``
    if isinstance(a, cst.AugAssign) and isinstance(b, cst.Assign):
        return "operator"
    if isinstance(a, cst.BaseNumber):
        return "number"
    if isinstance(a, cst.Name) and a.value in ("True", "False"):
        return "boolean"
    if isinstance(a, cst.SimpleString) and isinstance(b, cst.SimpleString):
        return "string"
    if isinstance(parent, cst.Assign | cst.AnnAssign) and (
        (isinstance(b, cst.Name) and b.value == "None") or isinstance(b, cst.SimpleString)
    ):
        return "none"
    if isinstance(parent, cst.IfExp) and isinstance(b, cst.BooleanOperation):
        return "ternary"
    if isinstance(parent, cst.Arg) and isinstance(b, cst.Name) and b.value == "None":
        return "argument"
    if isinstance(a, cst.Call) and isinstance(b, cst.Call) and len(b.args) < len(a.args):
        return "argument"
    if _one_operator_apart(a, b):
        return "operator"  # a swap that changes precedence, e.g. ``** 2`` -> ``* 2``
    return "other"


def _tokens(node: cst.CSTNode) -> list[tuple[int, str]]:
    code = cst.Module([]).code_for_node(node)
    return [
        (t.type, t.string)
        for t in tokenize.generate_tokens(io.StringIO(code).readline)
        if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
    ]


def _one_operator_apart(a: cst.CSTNode, b: cst.CSTNode) -> bool:
    """Whether the code of ``a`` and ``b`` differs in one operator token only."""
    try:
        ta, tb = _tokens(a), _tokens(b)
    except (cst.CSTCodegenError, tokenize.TokenError, SyntaxError):
        return False
    if len(ta) != len(tb):
        return False
    diff = [(x, y) for x, y in zip(ta, tb, strict=True) if x != y]
    words = {"and", "or", "not", "in", "is"}
    return len(diff) == 1 and all(t[0] == tokenize.OP or t[1] in words for t in diff[0])


def _functions(module: cst.Module) -> dict[str, cst.FunctionDef]:
    out: dict[str, cst.FunctionDef] = {}
    for child in module.body:
        if isinstance(child, cst.FunctionDef):
            out[child.name.value] = child
        elif isinstance(child, cst.ClassDef) and isinstance(child.body, cst.IndentedBlock):
            out |= {m.name.value: m for m in child.body.body if isinstance(m, cst.FunctionDef)}
    return out


def classify(root: Path) -> list[dict[str, str]]:
    """Every mutant of the last ``mutmut run``: name, file, status and kind."""
    rows = []
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        source = meta.relative_to(root / "mutants").with_suffix("")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        functions = _functions(read_mutants_module(source))
        for name, code in codes.items():
            generated = name.rpartition(".")[-1]
            orig = generated.rpartition("__mutmut_")[0] + "__mutmut_orig"
            rows.append(
                {
                    "name": name,
                    "file": str(source),
                    "status": status_by_exit_code[code],
                    "kind": kind(functions[orig], functions[generated]),
                }
            )
    return rows


def _score(rows: list[dict[str, str]]) -> str:
    """``killed/total (pct)``; a mutant whose tests ran out of time counts as killed (it was
    told apart), and is named."""
    counts = Counter(r["status"] for r in rows)
    total = len(rows)
    killed = counts["killed"] + counts["timeout"]
    pct = 100 * killed / total if total else 0.0
    rest = [f"{counts['timeout']} of them by timeout"] if counts["timeout"] else []
    rest += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in ("killed", "timeout")]
    return f"{killed}/{total} killed ({pct:.1f}%){'; ' + ', '.join(rest) if rest else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list each survivor's diff")
    parser.add_argument("--json", action="store_true", help="every mutant as JSON")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if not (root / "mutants").is_dir():
        print("no mutants/ here: run `mutmut run` from the repository root first", file=sys.stderr)
        return 2
    rows = classify(root)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    counted = [r for r in rows if r["kind"] in KINDS_COUNTED]
    print(f"all mutants:                 {_score(rows)}")
    print(f"operator and constant (bar): {_score(counted)}")
    for k in (*KINDS_COUNTED, *KINDS_OTHER):
        print(f"  {k:9} {_score([r for r in rows if r['kind'] == k])}")
    if args.survivors:
        for r in rows:
            if r["status"] not in ("killed", "timeout"):
                print(f"\n# {r['name']}: {r['status']}, {r['kind']}")
                print(get_diff_for_mutant(r["name"], path=r["file"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
