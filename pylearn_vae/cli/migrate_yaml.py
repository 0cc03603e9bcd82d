"""``scripts/migrate_yaml.py``: rewrite Pylearn2 names in a YAML file.

Only the characters of ``!obj:pylearn2...`` tags, ``!import pylearn2...``
values and renamed keyword keys change; comments, layout, anchors and quoting
stay byte for byte. The rewrites come from the same table the loader uses
(:mod:`pylearn_vae.config.legacy`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from pylearn_vae.cli.common import CLIError, check_path_flag, program, say
from pylearn_vae.config import keywords, legacy
from pylearn_vae.config.yaml_parse import BoundedSafeLoader
from pylearn_vae.text import escape

__all__ = ["main", "migrate_text", "Edit", "Problem"]


@dataclass
class Edit:
    start: int
    end: int
    new: str
    line: int
    old: str


@dataclass
class Problem:
    line: int
    message: str


class _Composer(BoundedSafeLoader):
    """Composes nodes (with positions) without constructing anything."""


def _tag_edits(text: str, edits: list, problems: list) -> None:
    for token in yaml.scan(text, Loader=_Composer):
        if not isinstance(token, yaml.TagToken):
            continue
        handle, suffix = token.value
        if handle != "!" or not suffix.startswith("obj:pylearn2."):
            continue
        old_name = suffix[len("obj:") :]
        line = token.start_mark.line + 1
        new_name = legacy.map_name(old_name)
        if new_name is None:
            problems.append(
                Problem(line, f"{old_name} cannot be migrated{legacy.hint_for(old_name)}")
            )
            continue
        edits.append(
            Edit(
                token.start_mark.index,
                token.end_mark.index,
                f"!obj:{new_name}",
                line,
                f"!obj:{old_name}",
            )
        )


def _scalar_inner(text: str, node) -> tuple[int, int]:
    """Span of a scalar's own characters (without tag, anchor or quotes)."""
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("'", '"'):
        end -= 1
    found = text.rfind(str(node.value), start, end)
    return (found, found + len(str(node.value))) if found >= 0 else (start, start)


def _node_edits(text: str, edits: list, problems: list) -> None:
    root = yaml.compose(text, Loader=_Composer)
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag in ("!import",) and str(node.value).startswith("pylearn2."):
                line = node.start_mark.line + 1
                new = legacy.map_name(node.value)
                if new is None:
                    problems.append(
                        Problem(
                            line, f"{node.value} cannot be migrated{legacy.hint_for(node.value)}"
                        )
                    )
                    continue
                start, end = _scalar_inner(text, node)
                if text[start:end] == node.value:
                    edits.append(Edit(start, end, new, line, node.value))
            continue
        if isinstance(node, yaml.MappingNode):
            owner = node.tag[len("!obj:") :] if node.tag.startswith("!obj:") else None
            owner = legacy.map_name(owner) or owner if owner else None
            for key, value in node.value:
                if owner and isinstance(key, yaml.ScalarNode):
                    new_key = keywords.RENAMED.get(owner, {}).get(key.value)
                    if new_key:
                        start, end = _scalar_inner(text, key)
                        edits.append(Edit(start, end, new_key, key.start_mark.line + 1, key.value))
                stack.extend([key, value])
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def migrate_text(text: str) -> tuple[str, list[Edit], list[Problem]]:
    """Return the migrated text, the edits made and what could not be migrated."""
    edits: list[Edit] = []
    problems: list[Problem] = []
    _tag_edits(text, edits, problems)
    _node_edits(text, edits, problems)
    edits.sort(key=lambda e: e.start)
    out, last = [], 0
    for edit in edits:
        if edit.start < last:
            continue
        out.append(text[last : edit.start])
        out.append(edit.new)
        last = edit.end
    out.append(text[last:])
    return "".join(out), edits, problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate_yaml.py",
        description="Rewrite Pylearn2 class names (and renamed keywords) in a YAML file to "
        "pylearn_vae's, leaving everything else unchanged.",
    )
    parser.add_argument("input", help="YAML file to migrate")
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "-o", "--output", help="write the migrated file here (default: standard output)"
    )
    out.add_argument("--in-place", action="store_true", help="rewrite the input file")
    out.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if the file needs migration"
    )
    return parser


#: The largest YAML file read (as a sweep's base YAML).
MAX_INPUT_BYTES = 16 << 20


@program
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    path = Path(args.input)
    from pylearn_vae.utils.files import ModelFileError, read_text_file

    try:
        check_path_flag("--output", args.output)
        text = read_text_file(path, "the YAML file", MAX_INPUT_BYTES)
    except (CLIError, ModelFileError) as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        new_text, edits, problems = migrate_text(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        say(f"error: {where}: {exc.problem or exc}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        say(f"error: {path} is not valid YAML: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        say(f"error: {path} is nested too deeply to parse", file=sys.stderr)
        return 2
    for edit in edits:
        say(
            f"{escape(path)}:{edit.line}: {escape(edit.old)} -> {escape(edit.new)}", file=sys.stderr
        )
    for problem in problems:
        say(
            f"{escape(path)}:{problem.line}: cannot migrate: {escape(problem.message)}",
            file=sys.stderr,
        )
    summary = f"{path}: {len(edits)} change(s), {len(problems)} problem(s)"
    if args.check:
        needs = bool(edits or problems)
        say(summary + ("; needs migration" if needs else "; up to date"), file=sys.stderr)
        return 1 if needs else 0
    if args.in_place or args.output:
        from pylearn_vae.utils.files import atomic_write

        target = path if args.in_place else Path(args.output)
        data = new_text.encode("utf-8")
        try:
            atomic_write(target, lambda handle: handle.write(data))
        except Exception as exc:
            say(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(new_text)
    say(summary, file=sys.stderr)
    return 1 if problems else 0
