"""Build objects from Pylearn2-style YAML files.

Supported tags:

* ``!obj:dotted.path.Callable {key: value, ...}`` calls the callable with the
  mapping as keyword arguments;
* ``!import dotted.name`` is the named module or object itself;
* ``!float 'value'`` is a float; YAML 1.1 floats without a dot (``1e-3``)
  are read as floats too, not strings;
* ``!pkl: 'path'`` loads a model file through :func:`pylearn_vae.persistence.load`
  (found by name, as ``!obj:`` callables are).

``${VAR}`` in any string is replaced from the ``environ`` mapping, then from
the process environment; the parsed string (an :class:`ExpandedText`) keeps
the text as written too. Anchors and aliases keep their YAML meaning: an
alias refers to the *same* object as its anchor.

Loading happens in two phases: the text is parsed into proxies on a private
``yaml.SafeLoader`` subclass (nothing is imported or called, no PyYAML global
state is touched), then the proxies are instantiated. Every error names the
file, line and column of the node that caused it. :func:`load` does both;
``load(..., instantiate=False)`` and :func:`instantiate` do one each, so that
a program can look at the parsed file before building anything.

A document may hold at most ``MAX_NODES`` nodes once its aliases are
expanded (a "billion laughs" document is refused before anything reads it in
full) and nest at most ``MAX_DEPTH`` levels.

A training YAML is a program: ``!obj:`` may call any callable, as in
Pylearn2. The YAML stored in a model or checkpoint file is loaded with
``restrict_to`` instead: only model classes, named exactly (no attribute
walks, no other module imported), and no ``!pkl:``, ``!import`` or ``${VAR}``.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import inspect
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pylearn_vae.config import legacy
from pylearn_vae.config.errors import ConfigError
from pylearn_vae.errors import UnsupportedOptionError

__all__ = [
    "BoundedSafeLoader",
    "MAX_DEPTH",
    "MAX_NODES",
    "load",
    "load_path",
    "instantiate",
    "ConfigError",
    "ExpandedText",
    "ObjectProxy",
    "accepted_keywords",
    "preprocess",
]


MAX_NODES = 100_000
MAX_DEPTH = 100
#: What ``!pkl: path`` calls with the path (the safe model-file loader).
PKL_LOADER = "pylearn_vae.persistence.load"


@dataclass(eq=False)
class _Mark:
    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}, line {self.line}, column {self.column}"


def _mark(source: str, node) -> _Mark:
    return _Mark(source, node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass(eq=False)
class ObjectProxy:
    """A parsed ``!obj:`` node, not yet instantiated."""

    callable_name: str
    kwargs: dict
    mark: _Mark
    key_marks: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ObjectProxy({self.callable_name!r} at {self.mark})"


@dataclass(eq=False)
class _ImportProxy:
    name: str
    mark: _Mark


@dataclass(eq=False)
class _PklProxy:
    path: str
    mark: _Mark


class ExpandedText(str):
    """A parsed string in which ``${VAR}`` was replaced; ``written`` is the text
    as the file wrote it (configurations are compared as written). Built
    objects receive plain ``str``.

    >>> text = ExpandedText("run1_best.pkl", "${STEM}_best.pkl")
    >>> text == "run1_best.pkl", text.written
    (True, '${STEM}_best.pkl')
    """

    written: str

    def __new__(cls, value: str, written: str) -> ExpandedText:
        text = super().__new__(cls, value)
        text.written = written
        return text


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def preprocess(
    string: str, environ: Mapping[str, str] | None = None, where: str | None = None
) -> str:
    """Replace ``${VAR}`` (and ``$VAR``) in ``string``.

    Values come from ``environ`` first, then from ``os.environ``. An
    undefined variable is a :class:`ConfigError`.

    >>> preprocess("${STEM}_best.pkl", {"STEM": "run1"})
    'run1_best.pkl'
    """

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if environ is not None and name in environ:
            return str(environ[name])
        if name in os.environ:
            return os.environ[name]
        raise ConfigError(
            f"environment variable ${{{name}}} is not defined; set it in the environment "
            "or pass it in environ=",
            where,
        )

    return _VAR.sub(replace, string)


# YAML 1.1 floats need a dot; Pylearn2 files write 1e-3 and expect a float.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class BoundedSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing flow collections (``[ ]``, ``{ }``) nested
    more than ``MAX_DEPTH`` deep as it scans them.

    PyYAML's scanner re-checks every open flow collection at each token, so a
    file of N nested brackets takes time in N squared (a 100 KB file of ``[``
    took 38 s); stopping at the bracket bounds it. Every YAML reader of the
    package derives from this class. (It hooks the scanner's
    ``fetch_flow_collection_start`` and reads ``flow_level``, PyYAML names
    unchanged since 2006; ``tests/config/test_yaml_limits.py`` fails if the
    hook stops being called.)
    """

    def fetch_flow_collection_start(self, TokenClass):
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(
                None,
                None,
                f"this YAML is nested more than {MAX_DEPTH} levels deep; flatten it",
                self.get_mark(),
            )
        super().fetch_flow_collection_start(TokenClass)


class _ConfigLoader(BoundedSafeLoader):
    """YAML's safe loader with Pylearn2's tags (``!obj:``, ``!import``, ``!float``,
    ``!pkl:``), located errors and ``${VAR}`` expansion. :func:`_make_loader`
    makes a subclass per load that sets ``source``, ``environ`` and ``expand_vars``."""

    source = "<string>"
    environ: Mapping[str, str] | None = None
    expand_vars = True

    def mark(self, node):
        return _mark(self.source, node)

    def construct_text(self, node):
        value = self.construct_scalar(node)
        if not self.expand_vars or not _VAR.search(value):
            return value
        return ExpandedText(preprocess(value, self.environ, str(self.mark(node))), value)

    def construct_keywords(self, node, deep=True):
        """A mapping's ``(values, marks)``: scalar keys, each given once."""
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(
                f"expected a mapping of keyword arguments, found {node.id}", str(self.mark(node))
            )
        self.flatten_mapping(node)
        result: dict = {}
        marks: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | type(None)):
                raise ConfigError(
                    f"mapping keys must be scalars, got {key!r}", str(self.mark(key_node))
                )
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r} (first given at line {marks[key].line})",
                    str(self.mark(key_node)),
                )
            marks[key] = self.mark(key_node)
            result[key] = self.construct_object(value_node, deep=deep)
        return result, marks

    def construct_plain_mapping(self, node):
        return self.construct_keywords(node)[0]

    def construct_obj(self, suffix, node):
        mark = self.mark(node)
        if not suffix:
            raise ConfigError(
                "!obj: needs a dotted name, as in !obj:pylearn_vae.models.vae.VAE", str(mark)
            )
        if isinstance(node, yaml.ScalarNode) and self.construct_scalar(node) in ("", None):
            kwargs, marks = {}, {}
        elif isinstance(node, yaml.MappingNode):
            kwargs, marks = self.construct_keywords(node)
        else:
            raise ConfigError(
                f"!obj:{suffix} must be followed by a mapping of keyword arguments, found {node.id}",
                str(mark),
            )
        for key, key_mark in marks.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"keyword argument names must be strings, got {key!r}", str(key_mark)
                )
        return ObjectProxy(suffix, kwargs, mark, marks)

    def construct_import(self, suffix, node):
        name = suffix or self.construct_scalar(node)
        return _ImportProxy(str(name).strip(), self.mark(node))

    def construct_float(self, node):
        value = self.construct_scalar(node)
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"!float expects a number, got {_cut(value)!r}", str(self.mark(node))
            ) from None
        return self._finite(number, value, node)

    def construct_yaml_float(self, node):
        return self._finite(super().construct_yaml_float(node), node.value, node)

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # "!!int abc", or more digits than Python converts (4,300)
            raise ConfigError(
                f"{_cut(node.value)!r} is not an integer Python can read", str(self.mark(node))
            ) from None

    def construct_object(self, node, deep=False):
        # PyYAML's own constructors (timestamps, !!bool, !!float, ...) fail with
        # ValueError, KeyError or AttributeError on values they cannot read.
        try:
            return super().construct_object(node, deep=deep)
        except (ConfigError, yaml.YAMLError):
            raise
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            raise ConfigError(
                f"cannot read the {node.tag.rsplit(':', 1)[-1]} value {_cut(node.value)!r} "
                f"({type(exc).__name__}: {_cut(exc, 80)})"
                if isinstance(node, yaml.ScalarNode)
                else f"cannot read this value ({type(exc).__name__}: {_cut(exc, 80)})",
                str(self.mark(node)),
            ) from None

    def _finite(self, number: float, text: str, node) -> float:
        """``number``, unless it is infinite and ``text`` does not spell infinity (1e400)."""
        if math.isinf(number) and "inf" not in str(text).lower():
            raise ConfigError(
                f"{_cut(text)} is too large for a float (it would be infinity); write .inf if "
                "you mean infinity",
                str(self.mark(node)),
            )
        return number

    def construct_pkl(self, node):
        return _PklProxy(self.construct_text(node), self.mark(node))

    def construct_undefined(self, node):
        raise ConfigError(
            f"unknown YAML tag {node.tag!r}; supported tags are !obj:, !import, !float and !pkl:",
            str(self.mark(node)),
        )


_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))
_ConfigLoader.add_constructor("tag:yaml.org,2002:str", _ConfigLoader.construct_text)
_ConfigLoader.add_constructor("tag:yaml.org,2002:map", _ConfigLoader.construct_plain_mapping)
_ConfigLoader.add_multi_constructor("!obj:", _ConfigLoader.construct_obj)
_ConfigLoader.add_multi_constructor("!import:", _ConfigLoader.construct_import)
_ConfigLoader.add_constructor("!import", lambda loader, node: loader.construct_import("", node))
_ConfigLoader.add_constructor("!float", _ConfigLoader.construct_float)
_ConfigLoader.add_constructor("tag:yaml.org,2002:float", _ConfigLoader.construct_yaml_float)
_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _ConfigLoader.construct_yaml_int)
_ConfigLoader.add_constructor("!pkl:", _ConfigLoader.construct_pkl)
_ConfigLoader.add_constructor(None, _ConfigLoader.construct_undefined)


def _make_loader(source: str, environ: Mapping[str, str] | None, expand_vars: bool = True):
    """Return a fresh :class:`_ConfigLoader` subclass bound to ``source`` and ``environ``.

    With ``expand_vars`` false, ``${VAR}`` is left as written.
    """
    attributes = {"source": source, "environ": environ, "expand_vars": expand_vars}
    return type("_Loader", (_ConfigLoader,), attributes)


def _cut(text, limit: int = 40) -> str:
    """``text`` for a message, cut to ``limit`` characters (a 5,000-digit number...)."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


# --- phase 1: parse ------------------------------------------------------------


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_node_graph(root, source: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH):
    """Refuse a composed YAML node graph that is too big or too deep once aliases are expanded.

    Aliases make the graph a DAG (or a cycle): sizes are counted with
    memoisation, iteratively, so the check itself is fast and cannot
    overflow the stack.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            total = 1 + sum(size[id(k)] for k in kids)
            depth = 1 + max((height[id(k)] for k in kids), default=0)
            if total > max_nodes:
                raise ConfigError(
                    f"this YAML expands to more than {max_nodes:,} values through its aliases "
                    "(*name); write the repeated parts out or use fewer aliases",
                    str(_mark(source, node)),
                )
            if depth > max_depth:
                raise ConfigError(
                    f"this YAML is nested more than {max_depth} levels deep; flatten it",
                    str(_mark(source, node)),
                )
            size[key], height[key] = total, depth
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(
                "an alias refers to a node that contains it", str(_mark(source, node))
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _parse(text: str, source: str, environ, expand_vars: bool = True):
    if not isinstance(text, str):
        raise ConfigError(f"YAML must be text, got {type(text).__name__}", source)
    loader_cls = _make_loader(source, environ, expand_vars)
    loader = None
    try:
        loader = loader_cls(text)
        node = loader.get_single_node()
        if node is None:
            return None
        check_node_graph(node, source)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", where) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"invalid YAML: character {chr(exc.character)!r} at position {exc.position} is not "
            "allowed in YAML text",
            source,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source) from None
    except RecursionError:
        raise ConfigError(
            f"this YAML is nested too deeply to parse (more than {MAX_DEPTH} levels allowed)",
            source,
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


# --- phase 2: instantiate ------------------------------------------------------


def _import_dotted(name: str, mark: _Mark):
    """Import ``name``: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ConfigError(f"{name!r} is not a valid dotted Python name", str(mark))
    if len(parts) == 1:
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise ConfigError(f"{name!r} is not a dotted path to a class or function", str(mark))
    module = None
    error: Exception | None = None
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name) or exc.name == module_name:
                error = exc
                continue
            raise ConfigError(f"importing module {module_name!r} failed: {exc}", str(mark)) from exc
        except Exception as exc:  # an import-time error inside the module
            raise ConfigError(
                f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}", str(mark)
            ) from exc
        obj = module
        for depth, attr in enumerate(parts[i:], start=i):
            if not hasattr(obj, attr):
                owner = ".".join(parts[:depth])
                public = [n for n in dir(obj) if not n.startswith("_")]
                close = difflib.get_close_matches(attr, public, n=1, cutoff=0.6)
                hint = f"; did you mean {owner}.{close[0]}?" if close else ""
                raise ConfigError(f"{owner!r} has no attribute {attr!r}{hint}", str(mark))
            obj = getattr(obj, attr)
        return obj
    raise ConfigError(f"no module named {parts[0]!r} (needed for {name!r})", str(mark)) from error


def _accepted_keywords(fn) -> tuple[list[str], bool, list[str]]:
    """Return (accepted names, takes **kwargs, required names) for a callable."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], True, []
    names, required, var_kw = [], [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    if var_kw and inspect.isclass(fn):
        # Keywords forwarded to base classes through **kwargs are accepted too.
        for base in fn.__mro__[1:]:
            init = base.__dict__.get("__init__")
            if init is None or base is object:
                continue
            try:
                base_sig = inspect.signature(init)
            except (TypeError, ValueError):
                continue
            more_var_kw = False
            for p in list(base_sig.parameters.values())[1:]:
                if p.kind is p.VAR_KEYWORD:
                    more_var_kw = True
                elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names:
                    names.append(p.name)
                    if p.default is p.empty:
                        required.append(p.name)
            if not more_var_kw:
                var_kw = False
                break
    return names, var_kw, required


def accepted_keywords(callable_name: str, where: str | None = None) -> list[str] | None:
    """The keywords ``!obj:callable_name {...}`` accepts, or None if it accepts any.

    Imports the callable (Pylearn2 names are mapped) as loading would; an
    unknown name is a :class:`ConfigError` located at ``where``.
    """
    from pylearn_vae.config import legacy

    mark = where or "<string>"
    fn = _import_dotted(legacy.LegacyNameMapper().map(callable_name, mark), mark)
    names, var_kw, _ = _accepted_keywords(fn)
    return None if var_kw else names


class _Instantiator:
    def __init__(self, resolve, mapper=None, restricted: bool = False) -> None:
        self.memo: dict[int, Any] = {}
        self.resolve = resolve
        self.mapper = mapper
        self.restricted = restricted

    def __call__(self, node):
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if isinstance(node, ObjectProxy):
            result = self._build(node)
        elif isinstance(node, _ImportProxy | _PklProxy) and self.restricted:
            tag = "!import" if isinstance(node, _ImportProxy) else "!pkl:"
            raise ConfigError(
                f"{tag} may not be used in the YAML stored in a model or checkpoint file "
                "(it could read other files or reach code); only !obj: model classes are allowed",
                str(node.mark),
            )
        elif isinstance(node, _ImportProxy):
            result = self.resolve(node.name, node.mark)
        elif isinstance(node, _PklProxy):
            result = self._load_pkl(node)
        elif isinstance(node, dict):
            result = {k: self(v) for k, v in node.items()}
        elif isinstance(node, list):
            result = [self(v) for v in node]
        elif isinstance(node, ExpandedText):
            return str(node)
        else:
            return node
        self.memo[key] = result
        return result

    def _load_pkl(self, node: _PklProxy):
        # ``!pkl: path`` means ``!obj:pylearn_vae.persistence.load {path: ...}``: the
        # loader is found by name, like every callable a YAML file names, so this
        # layer does not import the persistence layer that sits above it.
        load_model_file = self.resolve(PKL_LOADER, node.mark)
        try:
            return load_model_file(str(node.path))
        except Exception as exc:
            raise ConfigError(f"!pkl: could not load {node.path!r}: {exc}", str(node.mark)) from exc

    def _build(self, proxy: ObjectProxy):
        """Call the proxy's callable with its keywords built; errors point into the YAML."""
        fn = self.resolve(proxy.callable_name, proxy.mark)
        if not callable(fn):
            raise ConfigError(f"{proxy.callable_name!r} is not callable", str(proxy.mark))
        names, var_kw, required = _accepted_keywords(fn)
        self._rename_keywords(fn, proxy)
        _check_keywords(fn, proxy, names, var_kw, required)
        kwargs = {k: self(v) for k, v in proxy.kwargs.items()}
        _check_integers(fn, proxy, kwargs)
        try:
            result = fn(**kwargs)
            _record_source(result, proxy)
            return result
        except ConfigError:
            raise
        except UnsupportedOptionError as exc:
            first = next((o for o in exc.options if o in proxy.key_marks), None)
            where = proxy.key_marks[first] if first else proxy.mark
            raise ConfigError(f"{proxy.callable_name}: {exc}", str(where)) from exc
        except Exception as exc:
            raise ConfigError(
                f"building {proxy.callable_name} failed: {type(exc).__name__}: {exc}",
                str(proxy.mark),
            ) from exc

    def _rename_keywords(self, fn, proxy: ObjectProxy) -> None:
        """Move keywords given under an old Pylearn2 name to the new one (noted by the mapper)."""
        for old_key, new_key in legacy.renamed_keywords_for(fn, proxy.callable_name).items():
            if old_key in proxy.kwargs and new_key not in proxy.kwargs:
                proxy.kwargs[new_key] = proxy.kwargs.pop(old_key)
                proxy.key_marks[new_key] = proxy.key_marks.pop(old_key)
                if self.mapper is not None:
                    self.mapper.note_keyword(proxy.callable_name, old_key, new_key)


def _check_keywords(fn, proxy: ObjectProxy, names, var_kw: bool, required) -> None:
    """Refuse a keyword ``fn`` does not take (with advice) and a missing required one."""
    for key in proxy.kwargs:
        if key not in names and not var_kw:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            advice = legacy.keyword_advice(fn, key, proxy.callable_name)
            if advice:
                hint = f" ({advice})"
            raise ConfigError(
                f"{proxy.callable_name} got an unexpected keyword argument {key!r}{hint}; "
                f"accepted: {', '.join(names) or 'none'}",
                str(proxy.key_marks.get(key, proxy.mark)),
            )
    missing = [n for n in required if n not in proxy.kwargs]
    if missing:
        raise ConfigError(
            f"{proxy.callable_name} is missing required argument(s): {', '.join(missing)}",
            str(proxy.mark),
        )


def _check_integers(fn, proxy: ObjectProxy, kwargs: dict) -> None:
    """Refuse a fractional value for a keyword ``fn`` annotates as an integer."""
    for key in _integer_keywords(fn):
        value = kwargs.get(key)
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(
                f"{proxy.callable_name}: {key} must be an integer, got {value!r}",
                str(proxy.key_marks.get(key, proxy.mark)),
            )


_INT_ANNOTATIONS = ("int", "int | None", "None | int", "Optional[int]", int)


def _integer_keywords(fn) -> list[str]:
    """Keyword arguments of ``fn`` annotated as integers (``batch_size: int | None``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.annotation in _INT_ANNOTATIONS]


def _record_source(obj, proxy: ObjectProxy) -> None:
    """Keep the YAML that built an object on it (``obj.yaml_src``, as Pylearn2 did).

    Only classes that opt in with a true ``records_yaml_src`` class attribute
    (models and data sets) get it, so that other results stay untouched.
    """
    if getattr(type(obj), "records_yaml_src", False):
        obj.yaml_src = dump(proxy)


def dump(node) -> str:
    """Render parsed (not instantiated) YAML back to text that :func:`load` reads.

    Names are written in their pylearn_vae form, ``${VAR}`` substitutions are
    already applied, and aliases are written out in full.
    """
    if isinstance(node, ObjectProxy):
        name = legacy.map_name(node.callable_name) or node.callable_name
        inner = ", ".join(f"{k}: {dump(v)}" for k, v in node.kwargs.items())
        return f"!obj:{name} {{{inner}}}"
    if isinstance(node, _ImportProxy):
        return f"!import {legacy.map_name(node.name) or node.name}"
    if isinstance(node, _PklProxy):
        return f"!pkl: {json.dumps(node.path)}"
    if isinstance(node, dict):
        return "{" + ", ".join(f"{dump(k)}: {dump(v)}" for k, v in node.items()) + "}"
    if isinstance(node, list | tuple):
        return "[" + ", ".join(dump(v) for v in node) + "]"
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):
        if node != node:
            return ".nan"
        if node in (float("inf"), float("-inf")):
            return ".inf" if node > 0 else "-.inf"
        return repr(node)
    return json.dumps(str(node))


def _in_packages(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _import_exact(name: str, packages: tuple[str, ...], mark: _Mark):
    """The class ``module.Class`` named by ``name``, without walking attributes.

    Only modules inside ``packages`` are imported, and the class must be in
    the module's own namespace and defined inside ``packages``.
    """
    module_name, _, attr = name.rpartition(".")
    refused = ConfigError(
        f"{name} may not be used here: only classes of {', '.join(packages)}, named as "
        "module.Class, are allowed in a model or checkpoint file",
        str(mark),
    )
    # "pkg.__init__" would run a module's code a second time under another name.
    if not module_name or not all(
        p.isidentifier() and not p.startswith("__") for p in name.split(".")
    ):
        raise refused
    if not _in_packages(module_name, packages):
        raise refused
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise refused from None
    obj = vars(module).get(attr)
    if not (isinstance(obj, type) and _in_packages(obj.__module__, packages)):
        raise refused
    return obj


def _default_resolver(restrict_to: tuple[str, ...] | None = None):
    mapper = legacy.LegacyNameMapper()

    def resolve(name: str, mark: _Mark):
        if restrict_to is not None:
            return _import_exact(mapper.map(name, mark), restrict_to, mark)
        return _import_dotted(mapper.map(name, mark), mark)

    return resolve, mapper


def load(
    stream_or_string,
    environ: Mapping[str, str] | None = None,
    instantiate: bool = True,
    source: str | None = None,
    restrict_to: tuple[str, ...] | None = None,
):
    """Build the object described by a YAML string or open stream.

    Parameters
    ----------
    stream_or_string : str or file-like
        YAML text, or a stream to read it from.
    environ : mapping, optional
        Values for ``${VAR}`` substitution, consulted before ``os.environ``.
    instantiate : bool
        If false, return the parsed proxies without importing or calling
        anything.
    source : str, optional
        Name used in error messages (defaults to the stream's name).
    restrict_to : tuple of str, optional
        Packages or modules (``"pylearn_vae.models"``): only classes defined
        there, named exactly as ``module.Class``, may be built; ``!pkl:`` and
        ``!import`` are refused and ``${VAR}`` is left as written. Used to
        rebuild models from files without running or reading anything else.
    """
    if hasattr(stream_or_string, "read"):
        text = stream_or_string.read()
        source = source or getattr(stream_or_string, "name", "<stream>")
    else:
        text = stream_or_string
        source = source or "<string>"
    parsed = _parse(text, source, environ, expand_vars=restrict_to is None)
    if not instantiate:
        return parsed
    return _build_objects(parsed, restrict_to)


def instantiate(parsed, restrict_to: tuple[str, ...] | None = None):
    """Build the objects that ``parsed`` (from ``load(..., instantiate=False)``) describes.

    ``restrict_to`` is :func:`load`'s. Building may rename keywords that a
    file gives under an old Pylearn2 name inside ``parsed``: compare parsed
    configurations before building them.
    """
    return _build_objects(parsed, restrict_to)


def _build_objects(parsed, restrict_to: tuple[str, ...] | None):
    resolve, mapper = _default_resolver(restrict_to)
    result = _Instantiator(resolve, mapper, restrict_to is not None)(parsed)
    mapper.report()
    return result


def load_path(path, environ: Mapping[str, str] | None = None, instantiate: bool = True):
    """Build the object described by the YAML file at ``path``."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read YAML file: {exc.strerror}", path) from exc
    if not stat.S_ISREG(mode):
        raise ConfigError("not a regular file (a FIFO, device or folder); give a YAML file", path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read YAML file: {exc.strerror}", path) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r}); "
            "save the file as UTF-8",
            path,
        ) from None
    return load(text, environ=environ, instantiate=instantiate, source=path)
