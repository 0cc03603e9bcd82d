"""Paths the tests share: the repository and the real data mirror."""

from pathlib import Path

#: The root of the source tree (holds ``scripts/``, ``yaml/``, ``pylearn_vae/``).
REPO = Path(__file__).resolve().parents[2]

#: The binarized MNIST mirror, in ``../shared`` beside the clone.
MIRROR = REPO.parent / "shared" / "data" / "binarized_mnist"


def script_target(path) -> str:
    """``module:function`` that a ``scripts/*.py`` shim runs: the argument of its
    ``launch("module:function")`` call."""
    import ast

    calls = [
        node
        for node in ast.walk(ast.parse(Path(path).read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "launch"
    ]
    assert len(calls) == 1, f"{path}: expected one launch() call"
    return calls[0].args[0].value
