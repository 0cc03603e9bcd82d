"""Differences between two YAML configurations, found without building anything.

``train.py --resume`` compares the YAML a run was started from (stored in
its checkpoint) with the file the user gives now. Both are compared as
parsed proxies (nothing is imported or called), key by key, with every
``${VAR}`` as written: a file parsed for building (its variables replaced)
compares by the text it wrote (:class:`~pylearn_vae.config.yaml_parse.ExpandedText`),
so the run's own file is parsed once.
"""

from __future__ import annotations

from pylearn_vae.config import legacy, yaml_parse

__all__ = [
    "config_changes",
    "config_differences",
    "describe_changes",
    "flattened_config",
    "parse_as_written",
    "parsed_changes",
]


def parse_as_written(text: str, source: str = "<string>"):
    """``text`` parsed into proxies with every ``${VAR}`` left as written."""
    return yaml_parse.load(text, environ=_PermissiveEnviron(), instantiate=False, source=source)


def config_differences(old_text: str, new_text: str, old_source: str = "<checkpoint>") -> list[str]:
    """Human-readable differences between two YAML configurations (parsed, not instantiated)."""
    return describe_changes(config_changes(old_text, new_text, old_source))


def config_changes(old_text: str, new_text: str, old_source: str = "<checkpoint>") -> list:
    """``(dotted path, old value, new value)`` for every difference between two YAML texts."""
    return parsed_changes(parse_as_written(old_text, old_source), parse_as_written(new_text))


def describe_changes(changes: list) -> list[str]:
    """``"path: old -> new"`` for each ``(path, old, new)`` of :func:`parsed_changes`."""
    return [f"{path or '<root>'}: {old!r} -> {new!r}" for path, old, new in changes]


def parsed_changes(old, new) -> list:
    """``(dotted path, old value, new value)`` for every difference between two parsed
    configurations (from ``yaml_parse.load(..., instantiate=False)``, not yet built)."""
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

    walk(_plain(old), _plain(new), "")
    return out


def flattened_config(text: str, source: str = "<string>") -> dict[str, str]:
    """A YAML configuration as ``{dotted key: value as text}``, parsed as written
    (nothing built): an ``!obj:`` node's class under ``<key>.class``, list
    items under ``<key>.0``, ``<key>.1``, ...; empty lists and mappings as
    ``[]`` and ``{}``.

    >>> flattened_config("!obj:pylearn_vae.train.Train { model: {nvis: 784, n: [1, 2]} }")
    {'class': 'pylearn_vae.train.Train', 'model.nvis': '784', 'model.n.0': '1', 'model.n.1': '2'}
    """
    flat: dict[str, str] = {}

    def walk(node, path: str) -> None:
        def under(key) -> str:
            return f"{path}.{key}" if path else str(key)

        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, under("class" if key == "!obj" else key))
        elif isinstance(node, list) and node:
            for i, value in enumerate(node):
                walk(value, under(i))
        else:
            flat[path or "value"] = str(node)

    walk(_plain(parse_as_written(text, source)), "")
    return flat


def _plain(node):
    """A parsed node as plain dicts, lists and values (``!obj:`` becomes an ``"!obj"`` key,
    a string with variables the text it wrote, each variable as ``${NAME}``)."""
    if isinstance(node, yaml_parse.ObjectProxy):
        name = legacy.map_name(node.callable_name) or node.callable_name
        return {"!obj": name, **{k: _plain(v) for k, v in node.kwargs.items()}}
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, yaml_parse.ExpandedText):
        return yaml_parse.preprocess(node.written, _PermissiveEnviron())
    if hasattr(node, "path") and hasattr(node, "mark"):  # !pkl: path
        return f"!pkl:{_plain(node.path)}"
    if hasattr(node, "name") and hasattr(node, "mark"):  # !import name
        return f"!{type(node).__name__}:{node.name}"
    return node


class _PermissiveEnviron(dict):
    """Leaves ``${VAR}`` as written when comparing configurations."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        return "${" + key + "}"
