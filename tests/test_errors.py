"""One error hierarchy: every public exception and warning type of the package
is defined in pylearn_vae.errors and derives from its two bases."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from pylearn_vae import errors

PACKAGE = Path(errors.__file__).resolve().parent

#: Exception types that never leave the module that raises them (control flow).
INTERNAL = {("speedups/graph_cache.py", "NotCacheable")}

_BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def exception_classes_outside_errors(sources: dict[str, str]) -> list[str]:
    """``file: class`` for each public class defined outside errors.py whose
    bases name an exception type (a built-in one, or one ending in Error,
    Exception or Warning)."""
    found = []
    for relative, source in sources.items():
        if relative == "errors.py":
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
            if (
                any(
                    base in _BUILTIN_EXCEPTIONS or base.endswith(("Error", "Exception", "Warning"))
                    for base in bases
                )
                and (relative, node.name) not in INTERNAL
            ):
                found.append(f"{relative}: {node.name}")
    return found


def test_every_public_exception_type_is_defined_in_errors_py():
    sources = {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert exception_classes_outside_errors(sources) == []
    sabotage = {"space.py": "class SpaceMismatchError(ValueError):\n    pass\n"}
    assert exception_classes_outside_errors(sabotage) == ["space.py: SpaceMismatchError"]


def test_every_type_derives_from_the_package_bases_and_the_old_builtin_one():
    classes = [getattr(errors, name) for name in errors.__all__]
    for cls in classes:
        if issubclass(cls, Warning):
            assert issubclass(cls, errors.PylearnVAEWarning), cls
        elif cls not in (errors.StopRequested, errors.Terminated):  # not errors
            assert issubclass(cls, errors.PylearnVAEError), cls
    # what callers caught before the hierarchy existed still catches them
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ModelFileError, ValueError)
    assert issubclass(errors.DataMissingError, FileNotFoundError)
    assert issubclass(errors.NumericalError, FloatingPointError)
    assert issubclass(errors.SpeedupsUnavailableWarning, RuntimeWarning)


@pytest.mark.parametrize(
    "module, name",
    [
        ("pylearn_vae.config.errors", "ConfigError"),
        ("pylearn_vae.utils.files", "ModelFileError"),
        ("pylearn_vae.persistence.safe_pickle", "UnsafePickleError"),
        ("pylearn_vae.training_algorithms.sgd", "NumericalError"),
        ("pylearn_vae.training_algorithms.sgd", "StopRequested"),
        ("pylearn_vae.space", "SpaceMismatchError"),
        ("pylearn_vae.datasets.binarized_mnist", "DataMissingError"),
        ("pylearn_vae.cli.common", "CLIError"),
        ("pylearn_vae.sweep.spec", "SweepSpecError"),
        ("pylearn_vae.config.legacy", "LegacyNameWarning"),
    ],
)
def test_the_old_import_paths_give_the_same_types(module, name):
    imported = __import__(module, fromlist=[name])
    assert getattr(imported, name) is getattr(errors, name)
    assert inspect.getmodule(getattr(errors, name)) is errors
