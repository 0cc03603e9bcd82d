"""Differences between two YAML configurations, found without building anything.

``train.py --resume`` compares the YAML a run was started from (stored in
its checkpoint) with the file the user gives now. Both texts are parsed into
proxies (nothing is imported or called, ``${VAR}`` is left as written) and
compared key by key.
"""

from __future__ import annotations

from pylearn_vae.config import legacy, yaml_parse

__all__ = ["config_changes", "config_differences"]


def config_differences(old_text: str, new_text: str, old_source: str = "<checkpoint>") -> list[str]:
    """Human-readable differences between two YAML configurations (parsed, not instantiated)."""
    return [
        f"{path or '<root>'}: {old!r} -> {new!r}"
        for path, old, new in config_changes(old_text, new_text, old_source)
    ]


def _plain(node):
    """A parsed node as plain dicts, lists and values (``!obj:`` becomes an ``"!obj"`` key)."""
    if isinstance(node, yaml_parse.ObjectProxy):
        name = legacy.map_name(node.callable_name) or node.callable_name
        return {"!obj": name, **{k: _plain(v) for k, v in node.kwargs.items()}}
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if hasattr(node, "name") and hasattr(node, "mark"):
        return f"!{type(node).__name__}:{getattr(node, 'name', getattr(node, 'path', ''))}"
    return node


def config_changes(old_text: str, new_text: str, old_source: str = "<checkpoint>") -> list:
    """``(dotted path, old value, new value)`` for every difference between two YAML texts."""
    environ = _PermissiveEnviron()
    old = _plain(yaml_parse.load(old_text, environ=environ, instantiate=False, source=old_source))
    new = _plain(yaml_parse.load(new_text, environ=environ, instantiate=False))
    out: list = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(
                    a.get(key, "<absent>"),
                    b.get(key, "<absent>"),
                    f"{path}.{key}" if path else str(key),
                )
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append((path, a, b))

    walk(old, new, "")
    return out


class _PermissiveEnviron(dict):
    """Leaves ``${VAR}`` as written when comparing configurations."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        return "${" + key + "}"
