"""No function in the package is longer than ``LIMIT`` code lines without a stated reason.

Read from the source with ``ast`` (nothing is imported). A function's code
lines are those from its ``def`` line to its last line, less its docstring,
blank lines and lines that hold only a comment (counted as
``/work/tools/longfuncs.py`` counts them, issue 20). A nested function's
lines count for it and for the function around it.

``ALLOWED`` names the exceptions (``module:qualname``) with the reason a
reader would accept. It must stay honest: an entry whose function is gone,
or no longer over the limit, fails the test too.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pylearn_vae"
LIMIT = 50

#: ``module:qualname`` -> why the function may be longer than ``LIMIT``.
ALLOWED = {
    "pylearn_vae.speedups.vecops:_support_code": (
        "a C source template (the float32 exp, log, log1p, softplus and sigmoid kernels); "
        "split into pieces, the C would be harder to read and to compare with "
        "pylearn_vae.speedups.vecmath, which it mirrors statement for statement"
    ),
}


def code_lines(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The code lines of the function ``node`` of a file whose lines are ``lines``."""
    first = node.body[0]
    docstring = range(0)
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        docstring = range(first.lineno, first.end_lineno + 1)
    count = 0
    for number in range(node.lineno, node.end_lineno + 1):
        text = lines[number - 1].strip()
        if number in docstring or not text or text.startswith("#"):
            continue
        count += 1
    return count


class _Functions(ast.NodeVisitor):
    """Collects ``(qualname, code lines, line number)`` of every function of a module."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.scope: list[str] = []
        self.found: list[tuple[str, int, int]] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node) -> None:
        qualname = ".".join([*self.scope, node.name])
        self.found.append((qualname, code_lines(self.lines, node), node.lineno))
        # Python's own qualnames: what a function defines lives in its <locals>.
        self.scope += [node.name, "<locals>"]
        self.generic_visit(node)
        del self.scope[-2:]

    visit_AsyncFunctionDef = visit_FunctionDef


@functools.cache
def lengths() -> dict[str, list[tuple[int, str]]]:
    """``module:qualname`` -> ``(code lines, path:line)`` of each function of that name."""
    found: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        visitor = _Functions(source.splitlines())
        visitor.visit(ast.parse(source, str(path)))
        for qualname, count, line in visitor.found:
            where = f"{path.relative_to(ROOT)}:{line}"
            found.setdefault(f"{module}:{qualname}", []).append((count, where))
    return found


def test_the_count_skips_docstring_blank_and_comment_lines():
    source = '''
@decorator
def f(
    x,
):
    """What f does.

    More of it.
    """
    # a comment

    y = x  # a trailing comment counts: the line holds code
    return y
'''
    node = ast.parse(source).body[0]
    assert code_lines(source.splitlines(), node) == 5  # def, x, ), y = x, return


def test_nested_functions_get_python_qualnames():
    source = "class A:\n    def m(self):\n        def inner():\n            pass\n"
    visitor = _Functions(source.splitlines())
    visitor.visit(ast.parse(source))
    assert [name for name, _, _ in visitor.found] == ["A.m", "A.m.<locals>.inner"]


def test_no_function_is_over_the_limit_without_a_reason():
    too_long = [
        f"{where} {name}: {count} code lines"
        for name, places in sorted(lengths().items())
        for count, where in places
        if count > LIMIT and name not in ALLOWED
    ]
    assert not too_long, (
        f"functions over {LIMIT} code lines; split them into well-named parts, or add "
        "them to ALLOWED with the reason:\n" + "\n".join(too_long)
    )


def test_every_allowed_function_exists_and_is_still_over_the_limit():
    stale = []
    for name, reason in ALLOWED.items():
        assert reason.strip(), f"{name}: ALLOWED needs a reason"
        places = lengths().get(name)
        if places is None:
            stale.append(f"{name}: no such function any more")
        elif max(count for count, _ in places) <= LIMIT:
            stale.append(
                f"{name}: {max(count for count, _ in places)} code lines, within the limit"
            )
    assert not stale, "remove these entries from ALLOWED:\n" + "\n".join(stale)
