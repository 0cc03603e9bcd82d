"""What README.md and docs/*.md show exists: programs, their options, files, names.

- A command that runs one of our programs (``python scripts/X.py ...``,
  ``python benchmarks/X.py ...``, ``pylearn-vae-X ...``) names a program that
  exists and uses only options its argparse parser accepts, each given a value
  when it takes one, with as many positional arguments as the parser wants.
  A fragment such as ``scripts/train.py --epochs N`` (no ``python``), or a
  console script's name without arguments, has its options checked only.
- An option shown on its own in an inline code span (``--resume --force``)
  is an option of some program.
- A repository path (``yaml/...``, ``scripts/...``, ``docs/...``,
  ``benchmarks/...``, ``pylearn_vae/...``, ``tests/...``) exists, unless it
  is a file the programs write (see :func:`is_output`).
- A dotted ``pylearn_vae.x.y`` name is a module, or a name a module defines
  at its top level.

The parsers are taken from the programs' own ``main`` functions, stopped at
their first ``parse_args``; nothing else of them runs, nothing is compiled.
Text inside fenced blocks other than shell blocks (program output, YAML,
Python) is checked for dotted names only.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import functools
import glob
import importlib
import importlib.util
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from tests.helpers.paths import script_target

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
PATH_ROOTS = ("yaml", "scripts", "docs", "benchmarks", "pylearn_vae", "tests")
PATH_RE = re.compile(
    r"(?<![\w./~$-])((?:" + "|".join(PATH_ROOTS) + r")/(?:[\w.*/-]|\{[\w,.-]*\})*)"
)
NAME_RE = re.compile(r"(?<![\w.])pylearn_vae(?:\.\w+)+")
PROGRAM_RE = re.compile(r"^(?:(scripts|benchmarks)/)?(\w+\.py)$|^(pylearn-vae-[\w-]+)$")
SHELL_OPERATORS = {"&&", "||", ";", "|"}

#: Suffixes of the files our programs write (models, checkpoints, pictures,
#: results). No file of the repository has one, so a path ending so is an output.
OUTPUT_SUFFIXES = (".h5", ".hdf5", ".pkl", ".png", ".json", ".csv")


def is_output(path: str) -> bool:
    """A file the programs write, or anything in a sweep's default output
    folder (``<sweep file stem>_sweep/``)."""
    return path.endswith(OUTPUT_SUFFIXES) or any(
        part.endswith("_sweep") for part in path.split("/")
    )


# -- reading the docs -----------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """Some text of a doc: a shell line, an inline code span or a prose line."""

    doc: str
    line: int
    kind: str  # "shell", "code" (inline span), "prose" or "block" (other fenced text)
    text: str

    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """Split a Markdown file into shell lines, inline code spans, prose lines
    and the lines of other fenced blocks."""
    doc = path.name if path.parent == ROOT else f"docs/{path.name}"
    found: list[Snippet] = []
    fence: str | None = None
    prose: list[tuple[int, str]] = []
    pending = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            continue
        if fence is None:
            prose.append((number, line))
            found.append(Snippet(doc, number, "prose", line))
        elif fence in SHELL_LANGUAGES:
            pending += line.rstrip("\\") + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                found.append(Snippet(doc, number, "shell", pending))
                pending = ""
        else:
            found.append(Snippet(doc, number, "block", line))
    # Inline code spans may run over a line break.
    text = "\n".join(line for _, line in prose)
    starts = [0]
    for _, line in prose:
        starts.append(starts[-1] + len(line) + 1)
    for match in re.finditer(r"(`+)(.+?)\1", text, re.S):
        index = next(i for i, start in enumerate(starts) if start > match.start()) - 1
        found.append(Snippet(doc, prose[index][0], "code", " ".join(match.group(2).split())))
    return found


def tokens(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in a span that is not a command
        return text.split()


def commands(text: str) -> Iterator[tuple[str, bool, list[str]]]:
    """``(program, full, arguments)`` for each of our programs ``text`` runs;
    ``full`` when it is run as a command (``python X.py``, ``pylearn-vae-X``)
    rather than named in a fragment."""
    segment: list[str] = []
    for token in [*tokens(text), ";"]:
        if token not in SHELL_OPERATORS:
            segment.append(token)
            continue
        for i, word in enumerate(segment):
            match = PROGRAM_RE.match(word)
            if match is None:
                continue
            if match.group(3) or match.group(1) or match.group(2) in bare_programs():
                # A console script's bare name in a list of commands is a mention.
                run_by_python = i > 0 and segment[i - 1].startswith("python")
                full = run_by_python or bool(match.group(3) and segment[i + 1 :])
                yield word, full, segment[i + 1 :]
            break
        segment = []


# -- the programs and their parsers ---------------------------------------------


@functools.cache
def bare_programs() -> frozenset[str]:
    """File names that mean one of our programs even without their folder."""
    return frozenset(
        p.name for folder in ("scripts", "benchmarks") for p in (ROOT / folder).glob("*.py")
    )


def program_file(name: str) -> Path | None:
    """The file behind a program as the docs name it, or None."""
    if "/" in name:
        return ROOT / name
    for folder in ("scripts", "benchmarks"):
        if (ROOT / folder / name).is_file():
            return ROOT / folder / name
    return None


@functools.cache
def console_scripts() -> dict[str, str]:
    """``pylearn-vae-X`` -> ``module:function``, from setup.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    entries = config["options.entry_points"]["console_scripts"]
    return dict(
        (part.strip() for part in line.split("=", 1))
        for line in entries.splitlines()
        if "=" in line
    )


def _function(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _benchmark_main(path: Path) -> Callable:
    """A benchmark's ``main``, imported from its file; sys.path and sys.modules
    are left as they were (benchmarks import each other by file name)."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(path.parent))
    try:
        name = f"_docs_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # (dataclasses look their module up while it loads)
        spec.loader.exec_module(module)
        return module.main
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith("_docs_") or (ROOT / "benchmarks" / f"{name}.py").is_file():
                del sys.modules[name]


class _Parsed(BaseException):
    """Carries the parser out of ``main`` (past any ``except Exception``)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _stop(parser, *args, **kwargs):
    raise _Parsed(parser)


def parser_of(main: Callable) -> argparse.ArgumentParser:
    """The parser ``main`` builds, caught at its first ``parse_args``."""
    environ = dict(os.environ)
    try:
        with mock.patch.object(argparse.ArgumentParser, "parse_known_args", _stop):
            main([])
    except _Parsed as parsed:
        return parsed.parser
    finally:
        os.environ.clear()
        os.environ.update(environ)
    raise AssertionError(f"{main} returned without parsing its arguments")


@functools.cache
def program_parser(name: str) -> argparse.ArgumentParser | None:
    """The parser of a program as the docs name it, or None if there is no such program."""
    if name.startswith("pylearn-vae-"):
        target = console_scripts().get(name)
        return None if target is None else parser_of(_function(target))
    path = program_file(name)
    if path is None or not path.is_file():
        return None
    if path.parent.name == "scripts":
        return parser_of(_function(script_target(path)))
    return parser_of(_benchmark_main(path))


def actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    # argparse has no public list of a parser's options; its _actions is what
    # tools such as argcomplete read too.
    return {option: action for action in parser._actions for option in action.option_strings}


@functools.cache
def all_options() -> frozenset[str]:
    programs = [f"scripts/{p.name}" for p in (ROOT / "scripts").glob("*.py")]
    programs += [f"benchmarks/{p.name}" for p in (ROOT / "benchmarks").glob("*.py")]
    return frozenset(option for p in programs for option in actions(program_parser(p)))


# -- the checks -------------------------------------------------------------------


def _is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not re.fullmatch(r"-[\d.e+-]+", word)


def command_problems(program: str, full: bool, arguments: list[str]) -> list[str]:
    """What is wrong with running ``program`` with ``arguments`` (nothing: [])."""
    parser = program_parser(program)
    if parser is None:
        return [f"{program}: no such program"]
    known = actions(parser)
    problems, positionals, i = [], 0, 0
    while i < len(arguments):
        word = arguments[i]
        i += 1
        if not _is_option(word):
            positionals += 1
            continue
        option, has_value = word.split("=", 1)[0], "=" in word
        action = known.get(option)
        if action is None:
            problems.append(f"{program}: unknown option {option}")
        elif action.nargs != 0 and not has_value and action.nargs not in ("?", "*"):
            if i >= len(arguments) or _is_option(arguments[i]):
                problems.append(f"{program}: {option} needs a value")
            else:
                i += 1
    if full:
        wanted = [a.nargs for a in parser._actions if not a.option_strings]
        least = sum(1 for n in wanted if n in (None, "+")) + sum(
            n for n in wanted if isinstance(n, int)
        )
        most = None if any(n in ("*", "+") for n in wanted) else least + wanted.count("?")
        if positionals < least or (most is not None and positionals > most):
            problems.append(
                f"{program}: {positionals} positional arguments, expected {least}-{most}"
            )
    return problems


def path_problems(path: str) -> list[str]:
    """What is wrong with a repository path the docs name (nothing: [])."""
    path = path.rstrip(".,:;)")
    if is_output(path):
        return []
    expanded = [path]
    while any("{" in p for p in expanded):
        p = next(p for p in expanded if "{" in p)
        head, rest = p.split("{", 1)
        choices, tail = rest.split("}", 1)
        expanded.remove(p)
        expanded += [head + choice + tail for choice in choices.split(",")]
    return [f"{p}: no such file or folder" for p in expanded if not glob.glob(str(ROOT / p))]


def _defined_names(module: Path) -> set[str]:
    """Names a module binds at its top level (also inside top-level if/try)."""
    names: set[str] = set()
    body = list(ast.parse(module.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):
            body += node.body + node.orelse + getattr(node, "finalbody", [])
            body += [n for h in getattr(node, "handlers", []) for n in h.body]
    return names


def name_problems(dotted: str) -> list[str]:
    """What is wrong with a ``pylearn_vae.x.y`` name (nothing: [])."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        for module in (base.with_suffix(".py"), base / "__init__.py"):
            if module.is_file():
                rest = parts[end:]
                if rest and rest[0] not in _defined_names(module):
                    return [f"{dotted}: {'.'.join(parts[:end])} defines no {rest[0]}"]
                return []
    return [f"{dotted}: no such module"]


# -- the tests --------------------------------------------------------------------


def _problems(doc: Path, check: Callable[[Snippet], list[str]]) -> list[str]:
    return [f"{s.where()}: {p}" for s in snippets(doc) for p in check(s)]


def _check_commands(snippet: Snippet) -> list[str]:
    if snippet.kind not in ("shell", "code"):
        return []
    return [p for c in commands(snippet.text) for p in command_problems(*c)]


def _check_lone_options(snippet: Snippet) -> list[str]:
    words = tokens(snippet.text) if snippet.kind == "code" else []
    if not words or not words[0].startswith("--"):
        return []
    return [
        f"{w}: not an option of any program"
        for w in words
        if w.startswith("--") and w.split("=")[0] not in all_options()
    ]


def _check_paths(snippet: Snippet) -> list[str]:
    if snippet.kind not in ("prose", "shell"):  # a code span is scanned as part of its prose
        return []
    return [p for path in PATH_RE.findall(snippet.text) for p in path_problems(path)]


def _check_names(snippet: Snippet) -> list[str]:
    if snippet.kind == "code":  # scanned as part of its prose
        return []
    return [p for name in NAME_RE.findall(snippet.text) for p in name_problems(name)]


DOC_IDS = [str(d.relative_to(ROOT)) for d in DOCS]


def test_the_docs_show_commands_to_check():
    shown = [
        c
        for d in DOCS
        for s in snippets(d)
        if s.kind in ("shell", "code")
        for c in commands(s.text)
    ]
    assert len(shown) > 30, shown
    assert sum(full for _, full, _ in shown) > 20


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_commands_name_programs_and_their_options(doc):
    assert not _problems(doc, _check_commands)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_options_shown_alone_belong_to_a_program(doc):
    assert not _problems(doc, _check_lone_options)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_repository_paths_exist(doc):
    assert not _problems(doc, _check_paths)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_dotted_names_exist(doc):
    assert not _problems(doc, _check_names)


def test_the_checks_find_mistakes():
    """Each check fails on a mistake of its kind and passes its correction."""
    run = "python scripts/train.py yaml/vae_mnist.yaml"
    assert [command_problems(*c) for c in commands(run + " --epochs 3")] == [[]]
    assert command_problems(*next(commands(run + " --no-such-flag"))) == [
        "scripts/train.py: unknown option --no-such-flag"
    ]
    assert command_problems(*next(commands(run + " --epochs"))) == [
        "scripts/train.py: --epochs needs a value"
    ]
    assert command_problems(*next(commands("python scripts/train.py --quiet")))
    assert command_problems(*next(commands("pylearn-vae-evaluate m.h5 --workers 2"))) == []
    assert command_problems(*next(commands("python scripts/no_such.py")))
    assert not path_problems("yaml/vae_mnist.yaml") and path_problems("yaml/no_such.yaml")
    assert not path_problems("yaml/vae_mnist_best.h5") and not path_problems("yaml/x_sweep/")
    assert not path_problems("tests/utils/test_hostile_*.py")
    assert name_problems("pylearn_vae.models.vae.VAE") == []
    assert name_problems("pylearn_vae.models.vae.NoSuchClass")
    assert name_problems("pylearn_vae.no_such_module")
