"""Set values at dotted paths of a training YAML by editing its text.

Only the values named are rewritten: comments, layout, anchors and
``${VAR}`` references of the base file stay as they were, so a trial's YAML
reads like the base file with a few numbers changed, and it runs with
``scripts/train.py`` as it is.

A path walks mapping keys and list indices (``model.conditional.mlp.layers.0.dim``).
A key the ``!obj:`` mapping does not have yet is added if the callable
accepts that keyword. A path through an alias (``*train``) changes the
anchored node, which every alias shares, as YAML means it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

import yaml
from pylearn_vae.config.yaml_parse import accepted_keywords
from pylearn_vae.sweep.spec import SweepSpecError, compose, locate

__all__ = ["apply_overrides", "check_paths"]

_ANCHOR = re.compile(r"&[^\s,\[\]{}]+\s+")


def _describe(node, source: str) -> str:
    what = f"a {node.tag[len('!obj:') :]}" if node.tag.startswith("!obj:") else "a mapping"
    return f"{what} ({locate(source, node.start_mark)})"


def _find(root, key: str, source: str, where: str):
    """Return ("replace", node) or ("insert", mapping_node, name) for ``key``."""
    parts = key.split(".")
    node = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        done = ".".join(parts[:depth]) or "the document"
        if isinstance(node, yaml.MappingNode):
            names = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is not None:
                if last:
                    return ("replace", match)
                node = match
                continue
            if last and node.tag.startswith("!obj:"):
                accepted = accepted_keywords(
                    node.tag[len("!obj:") :], locate(source, node.start_mark)
                )
                if accepted is None or part in accepted:
                    return ("insert", node, part)
                names = accepted
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {'.'.join([*parts[:depth], close[0]])}?" if close else ""
            raise SweepSpecError(
                f"{key}: {done} is {_describe(node, source)} with no key {part!r}{hint} "
                f"(its keys: {', '.join(map(str, names)) or 'none'})",
                where,
            )
        if isinstance(node, yaml.SequenceNode):
            if not (part.isascii() and part.isdigit()) or int(part) >= len(node.value):
                raise SweepSpecError(
                    f"{key}: {done} is a list of {len(node.value)} items "
                    f"({locate(source, node.start_mark)}); {part!r} is not an index into it",
                    where,
                )
            node = node.value[int(part)]
            if last:
                return ("replace", node)
            continue
        raise SweepSpecError(
            f"{key}: {done} is the value {node.value!r} ({locate(source, node.start_mark)}), "
            "which has no keys",
            where,
        )
    raise SweepSpecError(f"{key}: empty path", where)


def _edit(text: str, found, value: str) -> tuple[int, int, str]:
    if found[0] == "replace":
        node = found[1]
        start, end = node.start_mark.index, node.end_mark.index
        anchor = _ANCHOR.match(text, start)
        if anchor:  # keep "&name " so that aliases of the node still resolve
            start = anchor.end()
        return start, end, value
    _, mapping, name = found
    if mapping.value:
        first = mapping.value[0][0]
        at = first.start_mark.index
        if mapping.flow_style:
            return at, at, f"{name}: {value}, "
        return at, at, f"{name}: {value}\n" + " " * first.start_mark.column
    at = mapping.end_mark.index - 1  # just before the closing brace of "{}"
    return at, at, f"{name}: {value}"


def _plan(text: str, source: str, keys, where: Mapping[str, str] | None):
    root = compose(text, source)
    if root is None:
        raise SweepSpecError("the base YAML is empty", source)
    where = where or {}
    return root, {key: _find(root, key, source, where.get(key, source)) for key in keys}


def check_paths(text: str, source: str, keys, where: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SweepSpecError` (located at ``where[key]``) for a key the YAML lacks."""
    _plan(text, source, keys, where)


def apply_overrides(
    text: str, source: str, values: Mapping[str, str], where: Mapping[str, str] | None = None
) -> str:
    """Return ``text`` with the value at each dotted key replaced by the YAML text given.

    Two keys that reach the same node, or one inside the other, are an error.
    """
    _, found = _plan(text, source, list(values), where)
    edits = sorted(
        ((*_edit(text, hit, values[key]), key) for key, hit in found.items()),
        key=lambda edit: (edit[0], edit[1]),
    )
    for (start, end, _, key), (next_start, next_end, _, other) in zip(edits, edits[1:]):
        if next_start < end or (start == next_start and end == next_end > start):
            raise SweepSpecError(
                f"{key} and {other} reach the same part of {source}; keep one of them",
                (where or {}).get(other, source),
            )
    for start, end, value, _ in reversed(edits):
        text = text[:start] + value + text[end:]
    return text
