"""The package's import structure, read from the source with ``ast`` (nothing is imported).

* No import cycle between pylearn_vae modules, counting imports inside
  functions too: an import moved into a function to dodge a cycle is still
  a cycle.
* The persistence layer does not import the training loop or the command
  lines above it, and nothing inside the package imports the compatibility
  aliases (``pylearn_vae.utils.serial``, ...) instead of the real modules.
* Every module imports only from its own layer or the ones below
  (docs/architecture.md, ``LAYERS``).
* No module outside the persistence package imports one of its private
  (``_``) names or reads one as a module attribute.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.aliases import ALIASES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pylearn_vae"
PERSISTENCE = "pylearn_vae.persistence"
# Modules the persistence layer sits below (see pylearn_vae/persistence/__init__.py).
ABOVE_PERSISTENCE = (
    "pylearn_vae.job",
    "pylearn_vae.train",
    "pylearn_vae.training_algorithms",
    "pylearn_vae.train_extensions",
    "pylearn_vae.cli",
    "pylearn_vae.evaluation",
    "pylearn_vae.gui",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(folder: Path) -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(folder.rglob("*.py"))
    }


MODULES = _sources(PACKAGE)


def _is_package(name: str) -> bool:
    return (ROOT / Path(*name.split(".")) / "__init__.py").exists()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, tree: ast.Module):
    """``(imported module, imported name or None, node)`` for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                yield target, alias.name, node


def _edges(module: str, tree: ast.Module, known) -> set[str]:
    """pylearn_vae modules that ``module`` imports (anywhere in it, functions included)."""
    out = set()
    for target, name, _ in imports(module, tree):
        if name is not None and f"{target}.{name}" in known:
            out.add(f"{target}.{name}")
        elif target in known:
            out.add(target)
    out.discard(module)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def private_uses(module: str, tree: ast.Module, known) -> list[tuple[str, str]]:
    """``(owner module, where and what)`` for private names of other pylearn_vae packages
    that ``module`` imports or reads."""
    found = []
    aliases = {}  # local name -> pylearn_vae module it stands for
    for target, name, node in imports(module, tree):
        if name is None:
            if target in known:
                aliases[target] = target
            for alias in node.names:
                if alias.asname and alias.name in known:
                    aliases[alias.asname] = alias.name
            continue
        full = f"{target}.{name}"
        if full in known:
            local = next(a.asname or a.name for a in node.names if a.name == name)
            aliases[local] = full
        elif target in known and name.startswith("_") and not name.startswith("__"):
            if not _same_package(module, target):
                found.append((target, f"line {node.lineno}: from {target} import {name}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__"):
                continue
            owner = ast.unparse(node.value)
            target = aliases.get(owner)
            if target and not _same_package(module, target):
                found.append((target, f"line {node.lineno}: {owner}.{node.attr}"))
    return found


def _same_package(module: str, target: str) -> bool:
    """Whether ``module`` lives inside the package that ``target`` belongs to."""
    package = target if _is_package(target) else target.rpartition(".")[0]
    return module == package or module.startswith(package + ".")


def test_the_package_has_no_import_cycle_even_through_imports_inside_functions():
    known = set(MODULES)
    graph = {name: _edges(name, tree, known) for name, tree in MODULES.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # The persistence modules themselves were one knot of cycles once.
    inside = {n for n in known if n.startswith(PERSISTENCE)}
    assert len(inside) >= 8
    assert find_cycle({n: graph[n] & inside for n in inside}) is None


def test_persistence_does_not_import_the_layers_above_it():
    known = set(MODULES)
    wrong = [
        f"{name} imports {target}"
        for name, tree in MODULES.items()
        if name.startswith(PERSISTENCE)
        for target in _edges(name, tree, known)
        if target.startswith(ABOVE_PERSISTENCE)
    ]
    assert wrong == []


def test_nothing_in_the_package_imports_the_compatibility_aliases():
    known = set(MODULES)
    wrong = [
        f"{name} imports {target}"
        for name, tree in MODULES.items()
        if name not in ALIASES
        for target in _edges(name, tree, known)
        if target in ALIASES
    ]
    assert wrong == []


@pytest.mark.parametrize("folder", ["pylearn_vae", "scripts", "benchmarks", "tests"])
def test_no_module_outside_persistence_uses_its_private_names(folder):
    known = set(MODULES)
    sources = MODULES if folder == "pylearn_vae" else _sources(ROOT / folder)
    wrong = {
        name: uses
        for name, tree in sources.items()
        if (uses := [u for t, u in private_uses(name, tree, known) if t.startswith(PERSISTENCE)])
    }
    assert wrong == {}


def test_the_checks_can_fail():
    """The detectors above find what they are meant to find."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    known = {"pylearn_vae.persistence", "pylearn_vae.persistence.hdf5_file", "pylearn_vae.train"}
    source = (
        "from pylearn_vae.persistence.hdf5_file import _BUILTIN_FILTERS\n"
        "from pylearn_vae.persistence import hdf5_file as h\n"
        "def f():\n"
        "    import pylearn_vae.train\n"
        "    return h._dataset_problem\n"
    )
    tree = ast.parse(source)
    assert [use for _, use in private_uses("pylearn_vae.train", tree, known)] == [
        "line 1: from pylearn_vae.persistence.hdf5_file import _BUILTIN_FILTERS",
        "line 5: h._dataset_problem",
    ]
    assert "pylearn_vae.train" in _edges("pylearn_vae.persistence.x", tree, known)
    # Inside its own package a private name is fine.
    assert private_uses("pylearn_vae.persistence.model_h5", tree, known) == []


def test_the_old_import_paths_name_the_same_objects():
    """Pylearn2's ``serial.load``/``serial.save`` and the modules that moved keep working."""
    from pylearn_vae import checkpoint, persistence
    from pylearn_vae.config import compare
    from pylearn_vae.persistence import checkpoint as real_checkpoint
    from pylearn_vae.persistence import hdf5_file, model_h5, safe_pickle
    from pylearn_vae.utils import hdf5, serial
    from pylearn_vae.utils import safe_pickle as old_safe_pickle

    assert serial.load is persistence.load and serial.save is persistence.save
    assert serial.ModelFileError is persistence.ModelFileError
    assert serial.UnsafePickleError is safe_pickle.UnsafePickleError
    assert old_safe_pickle.loads is safe_pickle.loads
    assert hdf5.read_tree is hdf5_file.read_tree and hdf5.load_model is model_h5.load_model_h5
    assert checkpoint.load_checkpoint is real_checkpoint.load_checkpoint
    assert checkpoint.config_changes is compare.config_changes
    for module in (serial, hdf5, old_safe_pickle, checkpoint):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


#: The layers of docs/architecture.md, bottom first: a module may import from
#: its own layer and the ones below. The longest matching prefix decides.
LAYERS = (
    (
        "foundation",
        (
            "pylearn_vae",
            "pylearn_vae.errors",
            "pylearn_vae.config",
            "pylearn_vae.space",
            "pylearn_vae.utils",
        ),
    ),
    (
        "backends",
        ("pylearn_vae.ops", "pylearn_vae.speedups", "pylearn_vae.numerics", "pylearn_vae.compile"),
    ),
    ("maths", ("pylearn_vae.expr",)),
    ("models and data", ("pylearn_vae.models", "pylearn_vae.datasets", "pylearn_vae.testing")),
    ("costs", ("pylearn_vae.costs",)),
    (
        "measuring",
        ("pylearn_vae.monitor", "pylearn_vae.evaluation", "pylearn_vae.termination_criteria"),
    ),
    ("persistence", ("pylearn_vae.persistence",)),
    (
        "training",
        ("pylearn_vae.train", "pylearn_vae.train_extensions", "pylearn_vae.training_algorithms"),
    ),
    ("jobs", ("pylearn_vae.job",)),
    ("programs", ("pylearn_vae.cli", "pylearn_vae.gui", "pylearn_vae.sweep")),
    # Re-exports under earlier import paths (Pylearn2's utils.serial among
    # them); nothing in the package imports them.
    ("old paths", ALIASES),
)


def layer_of(module: str) -> int:
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best


def test_every_module_imports_only_from_its_layer_or_below():
    known = set(MODULES)
    upward = []
    for module, tree in MODULES.items():
        own = layer_of(module)
        for target in sorted(_edges(module, tree, known)):
            if layer_of(target) > own:
                upward.append(
                    f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                )
    assert upward == [], "imports from a higher layer:\n" + "\n".join(upward)


def test_the_layer_check_can_fail():
    assert layer_of("pylearn_vae.models.mlp") < layer_of("pylearn_vae.train")
    tree = ast.parse("from pylearn_vae.train import Train")
    assert _edges("pylearn_vae.models.mlp", tree, set(MODULES)) == {"pylearn_vae.train"}


def imports_of_programs(modules: dict, package: str) -> list[str]:
    """Imports of ``pylearn_vae.cli`` (the command lines) by modules of ``package``."""
    known = set(MODULES)
    return [
        f"{name} imports {target}"
        for name, tree in modules.items()
        if name == package or name.startswith(package + ".")
        for target in _edges(name, tree, known)
        if target == "pylearn_vae.cli" or target.startswith("pylearn_vae.cli.")
    ]


def test_the_sweep_runs_jobs_without_the_command_lines():
    """A library layer does not import a program: the sweep and the training
    command line both run :class:`pylearn_vae.job.TrainingJob`."""
    assert imports_of_programs(MODULES, "pylearn_vae.sweep") == []
    sabotage = {"pylearn_vae.sweep.trial": ast.parse("from pylearn_vae.cli.train import main")}
    assert imports_of_programs(sabotage, "pylearn_vae.sweep") == [
        "pylearn_vae.sweep.trial imports pylearn_vae.cli.train"
    ]


def test_no_module_imports_a_private_name_from_another_package():
    """``from pylearn_vae.a import _x`` in ``pylearn_vae.b``: use a public name instead."""

    def package(name: str) -> str:
        return ".".join(name.split(".")[:2])

    found = [
        f"{module} imports {target}.{name}"
        for module, tree in MODULES.items()
        for target, name, _ in imports(module, tree)
        if target.startswith("pylearn_vae")
        and name
        and name.startswith("_")
        and not name.startswith("__")
        and package(target) != package(module)
    ]
    assert found == []


#: The speed machinery's package: the rest of the package reaches it only
#: through the names this package itself exports (docs/architecture.md).
WING = "pylearn_vae.speedups"


def wing_reach_ins(modules: dict) -> list[str]:
    """Imports of the wing's inner modules (or of names it does not export)
    by modules outside it."""
    import pylearn_vae.speedups as wing

    found = []
    for module, tree in modules.items():
        if module == WING or module.startswith(WING + "."):
            continue
        for target, name, _ in imports(module, tree):
            if target.startswith(WING + "."):
                found.append(f"{module} imports {target}")
            elif target == WING and name is not None and name not in wing.__all__:
                found.append(f"{module} imports {WING}.{name}")
    return found


def test_the_rest_of_the_package_reaches_the_speedups_only_through_their_interface():
    assert wing_reach_ins(MODULES) == []
    sabotage = {"pylearn_vae.monitor": ast.parse("from pylearn_vae.speedups.graph_cache import x")}
    assert wing_reach_ins(sabotage) == [
        "pylearn_vae.monitor imports pylearn_vae.speedups.graph_cache"
    ]
