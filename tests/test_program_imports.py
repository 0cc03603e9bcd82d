"""Every ``pylearn_vae`` name the programs outside the package import exists.

The benchmarks and scripts import the package inside functions (so that
``--help`` stays fast); a renamed or moved name then fails only when someone
runs the benchmark. This reads each ``from pylearn_vae... import name`` in
``benchmarks/`` and ``scripts/`` with ``ast`` and checks that the module
imports and has the name.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "benchmarks").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))


def _package_imports():
    for path in PROGRAMS:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pylearn_vae"):
                for alias in node.names:
                    yield path.relative_to(ROOT).as_posix(), node.lineno, node.module, alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("pylearn_vae"):
                        yield path.relative_to(ROOT).as_posix(), node.lineno, alias.name, None


IMPORTS = list(_package_imports())


def test_the_programs_import_the_package():
    # Guards the reader below: without any import found, the test would check nothing.
    files = {where for where, *_ in IMPORTS}
    assert "benchmarks/bench_train.py" in files and "scripts/train.py" in files


@pytest.mark.parametrize(
    ("where", "line", "module", "name"), IMPORTS, ids=[f"{w}:{n}" for w, n, *_ in IMPORTS]
)
def test_each_imported_name_exists(where, line, module, name):
    imported = importlib.import_module(module)
    if name is not None and not hasattr(imported, name):
        # ``from package import submodule`` is also fine.
        try:
            importlib.import_module(f"{module}.{name}")
        except ImportError:
            pytest.fail(f"{where}, line {line}: {module} has no name {name!r}")


def test_a_ctrl_c_while_the_program_imports_is_one_line_and_status_130(
    tmp_path, monkeypatch, capsys
):
    from pylearn_vae.cli import launch

    (tmp_path / "slow_to_import.py").write_text("raise KeyboardInterrupt\ndef main(): return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert launch("slow_to_import:main") == 130
    assert capsys.readouterr().err == "error: interrupted\n"
    (tmp_path / "quick.py").write_text("def main(): return 7\n")
    assert launch("quick:main") == 7
