"""The test suite's own layout, read from the source with ``ast`` (nothing is imported).

* Shared code lives in :mod:`tests.helpers`: no file under ``tests/`` imports
  a test module or a conftest, nor names one in a string (the scripts that
  tests run in subprocesses, the YAML they write). Fixtures stay in the
  ``conftest.py`` files; the helpers define none.
* Tests use the package's real module paths: the compatibility aliases
  (``pylearn_vae.utils.serial``, ...) are imported only by the tests whose
  purpose is to check them (``ALIAS_TESTS``).
* A user with only the [test] extra gets a passing run: no file under
  ``tests/`` imports an optional extra (Ray, JAX, matplotlib) at module
  level; tests that need one carry its marker (``tests/conftest.py`` skips
  them with the reason) or import it inside the test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers.aliases import ALIASES

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
HELPERS = "tests.helpers"
#: This file: its strings are the sabotaged files the check must catch.
SELF = "tests/test_suite_layout.py"

#: Tests that import an alias because the alias is what they check: Pylearn2
#: users import ``pylearn2.utils.serial``, and the seed document's snippets
#: run with only that prefix renamed.
ALIAS_TESTS = {
    "tests/test_import_layers.py": "the old paths name the same objects as the real ones",
    "tests/test_seed_snippets.py": "the seed document's code, which imports utils.serial",
}

#: Top-level packages of the optional extras ([jax], [sweep], [viz], [tensorboard],
#: [mlflow], [notebook]; the tests read event files with TensorBoard's own reader and
#: runs with MLflow's client where they are installed).
EXTRAS = (
    "jax",
    "jaxlib",
    "ray",
    "pyarrow",
    "matplotlib",
    "tensorboardX",
    "tensorboard",
    "mlflow",
    "nbclient",
    "nbformat",
)

#: Helper modules that import an extra at the top; tests/conftest.py must keep
#: --doctest-modules from importing them (``collect_ignore``).
EXTRA_HELPERS = ("tests/helpers/ray_callbacks.py",)

#: A dotted name under ``tests`` in a string (``from tests.x import``, ``!obj:tests.x.Y``).
_DOTTED_TESTS = re.compile(r"(?<![\w./])tests(?:\.\w+)+")


def _module_name(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_helper(name: str) -> bool:
    return name == HELPERS or name.startswith(HELPERS + ".")


def _imports(tree: ast.Module):
    """``(line, imported module, imported names)`` for every import, inside functions too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            yield node.lineno, module, tuple(alias.name for alias in node.names)


def _top_level_imports(tree: ast.Module):
    """Imports that run when the module is imported (not those inside functions or classes)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


def _plugins(tree: ast.Module) -> set[int]:
    """The ids of the strings of a ``pytest_plugins`` list (a conftest loads plugins so)."""
    return {
        id(element)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets)
        for element in ast.walk(node.value)
    }


def _strings(tree: ast.Module):
    """Every string constant but a conftest's plugin names."""
    plugins = _plugins(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in plugins:
                yield node.lineno, node.value


def _imported_modules(module: str, names: tuple[str, ...]) -> list[str]:
    """The modules an import brings in: ``from a import b`` imports module ``a.b``
    when ``a`` is a package (a folder of this repository)."""
    if names and (ROOT / Path(*module.split("."))).is_dir():
        return [f"{module}.{name}" for name in names]
    return [module]


def helper_problems(path: str, tree: ast.Module) -> list[str]:
    """Imports of test modules and conftests, in code or in strings; fixtures in helpers."""
    problems = []
    for line, module, names in _imports(tree):
        if module.startswith("."):
            problems.append(f"{path}:{line}: relative import {module}; import tests.helpers...")
            continue
        for name in _imported_modules(module, names):
            if name.split(".")[0] == "tests" and not _is_helper(name):
                problems.append(f"{path}:{line}: imports {name}, not from {HELPERS}")
                break
    for line, text in [] if path == SELF else _strings(tree):
        for name in _DOTTED_TESTS.findall(text):
            if not _is_helper(name):
                problems.append(f"{path}:{line}: a string names {name}, not in {HELPERS}")
    if _is_helper(_module_name(path)):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
            ):
                problems.append(f"{path}:{node.lineno}: fixture {node.name} belongs in a conftest")
    return problems


def alias_problems(path: str, tree: ast.Module) -> list[str]:
    """Imports of the package's compatibility aliases outside ``ALIAS_TESTS``."""
    if path in ALIAS_TESTS:
        return []
    problems = []
    for line, module, names in _imports(tree):
        for name in [module, *(f"{module}.{name}" for name in names)]:
            if name in ALIASES:
                problems.append(f"{path}:{line}: imports the alias {name}; use the real module")
                break
    return problems


def extra_problems(path: str, tree: ast.Module) -> list[str]:
    """Module-level imports of an optional extra (collection fails without it)."""
    if path in EXTRA_HELPERS:
        return []
    problems = []
    for node in _top_level_imports(tree):
        modules = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
        for module in modules:
            if module.split(".")[0] in EXTRAS:
                problems.append(
                    f"{path}:{node.lineno}: imports {module} at module level; mark the tests "
                    "that need it or use pytest.importorskip"
                )
    return problems


def layout_problems(sources: dict[str, str]) -> list[str]:
    """Every problem of the files ``sources`` (path relative to the repository -> text)."""
    problems = []
    for path, text in sorted(sources.items()):
        tree = ast.parse(text, path)
        problems += helper_problems(path, tree)
        problems += alias_problems(path, tree)
        problems += extra_problems(path, tree)
    return problems


SOURCES = {
    path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
    for path in sorted(TESTS.rglob("*.py"))
    if "__pycache__" not in path.parts
}


def test_the_suite_has_its_layout():
    assert layout_problems(SOURCES) == []


def test_helpers_that_import_an_extra_are_not_collected_as_doctests():
    (ignore,) = [
        node.value
        for node in ast.parse(SOURCES["tests/conftest.py"]).body
        if isinstance(node, ast.Assign)
        and [target.id for target in node.targets if isinstance(target, ast.Name)]
        == ["collect_ignore"]
    ]
    assert {f"tests/{path}" for path in ast.literal_eval(ignore)} == set(EXTRA_HELPERS)
    for path in EXTRA_HELPERS:
        assert path in SOURCES  # not renamed away from the list


def test_each_alias_test_imports_an_alias():
    """The allow-list stays short: a test that stopped needing an alias leaves it."""
    for path in ALIAS_TESTS:
        tree = ast.parse(SOURCES[path])
        imported = {
            name
            for _, module, names in _imports(tree)
            for name in [module, *(f"{module}.{name}" for name in names)]
        }
        assert imported & set(ALIASES), path


@pytest.mark.parametrize(
    ("path", "text", "problem"),
    [
        (
            "tests/ops/test_a.py",
            "from tests.ops.test_b import helper\n",
            "tests/ops/test_a.py:1: imports tests.ops.test_b, not from tests.helpers",
        ),
        (
            "tests/test_a.py",
            "import pytest\nfrom tests.conftest import make_vae\n",
            "tests/test_a.py:2: imports tests.conftest, not from tests.helpers",
        ),
        (
            "tests/test_a.py",
            "from tests.cli import conftest\n",
            "tests/test_a.py:1: imports tests.cli.conftest, not from tests.helpers",
        ),
        (
            "tests/sweep/conftest.py",
            "from tests.cli.conftest import mirror\n",
            "tests/sweep/conftest.py:1: imports tests.cli.conftest, not from tests.helpers",
        ),
        (
            "tests/ops/test_a.py",
            "from .test_b import helper\n",
            "tests/ops/test_a.py:1: relative import .test_b; import tests.helpers...",
        ),
        (
            "tests/ops/test_a.py",
            'SCRIPT = """\nfrom tests.conftest import make_vae\n"""\n',
            "tests/ops/test_a.py:1: a string names tests.conftest, not in tests.helpers",
        ),
        (
            "tests/cli/test_a.py",
            "YAML = \"!obj:tests.cli.helpers.Progress {path: 'p'}\"\n",
            "tests/cli/test_a.py:1: a string names tests.cli.helpers.Progress, not in tests.helpers",
        ),
        (
            "tests/helpers/things.py",
            "import pytest\n\n@pytest.fixture\ndef data():\n    return 1\n",
            "tests/helpers/things.py:4: fixture data belongs in a conftest",
        ),
        (
            "tests/cli/test_a.py",
            "def test_x():\n    from pylearn_vae.utils import serial\n",
            "tests/cli/test_a.py:2: imports the alias pylearn_vae.utils.serial; use the real module",
        ),
        (
            "tests/cli/test_a.py",
            "from pylearn_vae.checkpoint import read_checkpoint_info\n",
            "tests/cli/test_a.py:1: imports the alias pylearn_vae.checkpoint; use the real module",
        ),
        (
            "tests/sweep/test_a.py",
            "import pytest\nfrom ray import tune\n",
            "tests/sweep/test_a.py:2: imports ray at module level; mark the tests that need it "
            "or use pytest.importorskip",
        ),
        (
            "tests/test_a.py",
            "try:\n    import matplotlib.pyplot as plt\nexcept ImportError:\n    plt = None\n",
            "tests/test_a.py:2: imports matplotlib.pyplot at module level; mark the tests that "
            "need it or use pytest.importorskip",
        ),
    ],
)
def test_the_check_finds_a_sabotaged_file(path, text, problem):
    assert layout_problems({path: text}) == [problem]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("tests/ops/test_a.py", "from tests.helpers.models import make_vae\n"),
        ("tests/ops/test_a.py", "from tests.helpers import hostile_pickles as hp\n"),
        ("tests/ops/test_a.py", 'DRIVER = "from tests.helpers.ray_callbacks import Die"\n'),
        ("tests/ops/test_a.py", 'DOC = "see tests/cli/test_train.py"\n'),
        ("tests/test_seed_snippets.py", "from pylearn_vae.utils import serial\n"),
        ("tests/test_a.py", "def test_x():\n    import matplotlib.image\n"),
        ("tests/test_a.py", 'jax = pytest.importorskip("jax")\n'),
        ("tests/helpers/ray_callbacks.py", "from ray import tune\n"),
    ],
)
def test_the_check_lets_the_layout_pass(path, text):
    assert layout_problems({path: text}) == []
