"""PyTensor's own verdict on its settings, before a program does any work.

``PYTENSOR_FLAGS=mode=JUNK`` (or ``compiledir_format=%(nokey)s``, or such a
line in ``~/.pytensorrc``) makes PyTensor raise while it is imported (or, for
a setting computed from others, when first used, in the middle of a run).
Rather than repeat PyTensor's validation, :func:`import_checked` imports
PyTensor once, up front, reads the settings it computes late, and turns an
error PyTensor raised while reading a setting into one line naming the
setting, its value and where it is given. The error is recognised by where it
was raised (inside a PyTensor configuration parameter), not by its text.
"""

from __future__ import annotations

import sys

from pylearn_vae.cli.compile_cache import user_settings

__all__ = ["import_checked", "setting_error"]

#: Settings PyTensor computes only when first read, from other settings
#: (``compiledir`` from ``compiledir_format`` and ``base_compiledir``).
LATE_SETTINGS = ("compiledir",)


def _failing_parameter(exc: BaseException):
    """The innermost PyTensor configuration parameter being read or set where
    ``exc`` was raised, or None."""
    module = sys.modules.get("pytensor.configparser")
    kind = getattr(module, "ConfigParam", None)
    if kind is None:
        return None
    found = None
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, kind):
            found = candidate
        tb = tb.tb_next
    return found


def _read_by(default) -> tuple[str, ...]:
    """The attribute names a computed default reads (``config.compiledir_format``)."""
    code = getattr(default, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def setting_error(exc: BaseException, settings: dict[str, tuple[str, str]]) -> str | None:
    """The one-line message for ``exc`` if PyTensor raised it over a setting, else None.

    ``settings`` are the user's (:func:`~pylearn_vae.cli.compile_cache.user_settings`):
    the message names the one PyTensor could not use, or those its computed
    value is made from.
    """
    from pylearn_vae.text import escape

    parameter = _failing_parameter(exc)
    if parameter is None:
        return None
    name = getattr(parameter, "name", "?")
    culprits = [name] if name in settings else []
    culprits += [n for n in _read_by(getattr(parameter, "default", None)) if n in settings]
    reason = escape(f"{type(exc).__name__}: {exc}")
    if not culprits:
        return (
            f"error: PyTensor cannot compute its setting {name} ({reason}); check "
            "PYTENSOR_FLAGS and PyTensor's configuration files"
        )
    given = ", ".join(
        f"{escape(settings[n][1])} {escape(n)}={escape(repr(settings[n][0]))}" for n in culprits
    )
    used = "" if culprits == [name] else f" (PyTensor computes {name} from it)"
    return f"error: {given}: PyTensor cannot use it{used}: {reason}; fix or unset it"


def import_checked() -> None:
    """Import PyTensor and read its late settings; end the program (status 2)
    with one line if PyTensor cannot use a setting the user gave.

    Nothing is done when PyTensor is imported already (a library user's
    process) or when no setting is given (PyTensor's defaults are sound, and
    ``--help`` stays quick).
    """
    if "pytensor" in sys.modules:
        return
    try:
        settings = user_settings()
    except ValueError:
        return  # (compile_cache ends the program over unreadable settings)
    if not settings:
        return
    try:
        import pytensor

        for name in LATE_SETTINGS:
            getattr(pytensor.config, name)
    except Exception as exc:
        message = setting_error(exc, settings)
        if message is None:
            raise
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(2) from None
