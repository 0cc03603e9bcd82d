"""Command-line programs; ``scripts/*.py`` are thin wrappers around these."""

from pylearn_vae.cli import environment as _environment
from pylearn_vae.cli.compile_cache import use_writable_cache as _use_writable_cache

# Before any program module imports PyTensor, NumPy's BLAS or Numba.
_use_writable_cache()
_environment.check()


def launch(target: str) -> int:
    """Import the program ``"module:function"`` and run it: what ``scripts/*.py`` do.

    A Ctrl-C while the program's modules are still importing (a second or
    so, before its own signal handling starts) ends it like one later: a
    one-line message and status 130, no traceback.
    """
    import importlib
    import sys

    from pylearn_vae.cli.pytensor_settings import import_checked

    module, name = target.split(":")
    try:
        import_checked()  # (a setting PyTensor cannot use: one line, status 2)
        main = getattr(importlib.import_module(module), name)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    return main()
