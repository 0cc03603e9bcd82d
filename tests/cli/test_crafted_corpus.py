"""Every crafted input, given to the real programs in real processes under
memory, CPU and time limits (:mod:`tests.helpers.fork_runner`).

The corpus: every crafted ``.h5`` and ``.pkl`` model file of the library
tests, each given to one of the programs that read models (in turn:
``evaluate.py``, ``show_samples.py``, ``print_monitor.py``,
``plot_monitor.py``, ``benchmarks/nll_curve.py``), and this module's own
crafted training YAMLs (``train.py``, ``migrate_yaml.py``), sweep files
(``sweep.py``), download sources (``download_binarized_mnist.py``) and output
paths. Each run must end within the limits with exit status 1 or 2, an
``error:`` line, no traceback and no terminal control character; and,
after all of them, no payload has acted and no file that was there has
changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from tests.helpers import hostile_hdf5 as hh
from tests.helpers import hostile_pickles as hp
from tests.helpers.downloads import amat
from tests.helpers.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.subprocess, pytest.mark.corpus]

MODEL_PROGRAMS = ("evaluate", "show_samples", "print_monitor", "plot_monitor", "nll_curve")
#: Limits of each run: address space beyond the runner's, CPU and wall seconds.
MEMORY_MIB, CPU_SECONDS, WALL_SECONDS = 2048, 60, 60
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


def _laughs(levels: int = 9) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    return "\n".join(lines) + "\n"


TRAIN = (REPO / "yaml" / "vae_mnist.yaml").read_text()


def _train_with(old: str, new: str) -> str:
    assert old in TRAIN, old
    return TRAIN.replace(old, new, 1)


def yaml_cases(folder: Path) -> list[tuple[str, bytes | str, str, bool]]:
    """(name, file content, regex for the error, also for migrate_yaml.py)."""
    marker = folder / hp.MARKER
    evil = folder / "pkl" / "evil-yaml.pkl"
    evil.write_bytes(
        hp.program(
            hp.call(hp.stack_global("os", "system"), hp.tup(hp.text(f"touch {marker}-yaml")))
        )
    )
    return [
        ("flow nesting 100,000 deep", "[" * 100_000, r"nest", True),
        ("block nesting 2,000 deep", "".join(f"{' ' * i}k:\n" for i in range(2000)), r"", True),
        ("alias bomb", _laughs(), r"alias|expan", False),
        ("a recursive alias", "&a [*a]", r"", False),
        ("not UTF-8", b"\xff\xfe\x00k: v\n", r"UTF-8|utf-8|decode", True),
        ("a NUL byte", "k: v\x00\n", r"", True),
        ("tab indentation", "a:\n\tb: 1\n", r"", True),
        ("an empty file", "", r"", False),
        ("a bare number", "42\n", r"", False),
        ("a list at the top", "- 1\n- 2\n", r"", False),
        ("unknown tag", "!nope {a: 1}\n", r"", False),
        ("!obj with no name", "!obj: {a: 1}\n", r"", False),
        ("a class that does not exist", "!obj:pylearn_vae.nowhere.Nothing {}\n", r"", False),
        (
            "python/object/apply",
            f"!!python/object/apply:os.system ['touch {marker}-apply']\n",
            r"",
            False,
        ),
        ("python/name", "!!python/name:os.system ''\n", r"", False),
        ("!pkl: of a FIFO", "!pkl: 'fifo.pkl'\n", r"FIFO", False),
        ("!pkl: of /dev/zero", "!pkl: 'zero.pkl'\n", r"device", False),
        ("!pkl: of a payload", f"!pkl: '{evil}'\n", r"refus|allow", False),
        (
            "an undefined variable",
            "!obj:pylearn_vae.train.Train { save_path: '${NOPE_X}' }\n",
            r"NOPE_X",
            False,
        ),
        (
            "1e400",
            _train_with("learning_rate: 1e-3", "learning_rate: 1e400"),
            r"1e400|infinite|range",
            False,
        ),
        (
            "5,000 digits",
            _train_with("nhid: &nhid 200", f"nhid: &nhid {'9' * 5000}"),
            r"digit|large|integer",
            False,
        ),
        ("a bad timestamp", "when: !!timestamp abc\n", r"timestamp", False),
        ("bad base64", "x: !!binary '%%%'\n", r"", False),
        ("a merge of a number", "a:\n  <<: 5\n", r"", False),
        ("escape sequences in a tag", "!obj:\x1b[31merror: owned {}\n", r"", False),
        (
            "a control character in a key",
            "!obj:pylearn_vae.train.Train {\x07bell: 1}\n",
            r"",
            False,
        ),
        ("nvis negative", _train_with("nvis: &nvis 784", "nvis: &nvis -5"), r"nvis", False),
        ("nvis a fraction", _train_with("nvis: &nvis 784", "nvis: &nvis 78.4"), r"nvis", False),
        ("nhid of 10**12", _train_with("nhid: &nhid 200", "nhid: &nhid 1000000000000"), r"", False),
        ("batch size zero", _train_with("batch_size: 200", "batch_size: 0"), r"batch_size", False),
        (
            "learning rate NaN",
            _train_with("learning_rate: 1e-3", "learning_rate: .nan"),
            r"learning_rate|finite|NaN|nan",
            False,
        ),
        (
            "an unknown split",
            _train_with("which_set: 'train'", "which_set: 'bogus'"),
            r"bogus",
            False,
        ),
        (
            "an unknown keyword",
            _train_with("nvis: &nvis 784", "nvis: &nvis 784, colour: 3"),
            r"colour",
            False,
        ),
        ("a 2 MiB line", "k: '" + "x" * (2 << 20) + "'\n", r"", False),
    ]


def sweep_cases(folder: Path) -> list[tuple[str, str | bytes, str]]:
    """(name, sweep file content, regex); the base YAML is ``base.yaml`` beside the file."""
    space = "search_space:\n  algorithm.learning_rate: loguniform(1e-4, 3e-3)\n"
    ok = "base: base.yaml\nepochs: 2\ntrials: 2\n"
    return [
        ("no base", "epochs: 2\n" + space, r"base"),
        ("a missing base", ok.replace("base.yaml", "nothere.yaml") + space, r"nothere"),
        ("a FIFO base", ok.replace("base.yaml", str(folder / "fifo")) + space, r"FIFO"),
        ("a device base", ok.replace("base.yaml", "/dev/zero") + space, r"device|regular"),
        (
            "a folder base",
            ok.replace("base.yaml", str(folder / "pkl")) + space,
            r"folder|director|regular",
        ),
        ("a NUL in the base", ok.replace("base.yaml", "ba\\0se.yaml") + space, r""),
        ("range of 10**9", ok + "search_space:\n  model.seed: range(1000000000)\n", r"range"),
        ("grid of 10**6", ok + "search_space:\n  model.seed: {grid: range(10, 1000000)}\n", r""),
        (
            "1e400",
            ok + "search_space:\n  algorithm.learning_rate: uniform(0, 1e400)\n",
            r"inf",
        ),
        (
            "log of zero",
            ok + "search_space:\n  algorithm.learning_rate: loguniform(0, 1)\n",
            r"loguniform",
        ),
        (
            "bounds reversed",
            ok + "search_space:\n  algorithm.learning_rate: uniform(1, 0)\n",
            r"uniform",
        ),
        (
            "unknown distribution",
            ok + "search_space:\n  algorithm.learning_rate: normalish(0, 1)\n",
            r"normalish",
        ),
        ("negative trials", ok.replace("trials: 2", "trials: -1") + space, r"trials"),
        ("a billion trials", ok.replace("trials: 2", "trials: 1000000000") + space, r"trials"),
        ("a billion epochs", ok.replace("epochs: 2", "epochs: 1000000000") + space, r"epochs"),
        ("a key not in the base", ok + "search_space:\n  model.nope: [1, 2]\n", r"nope"),
        (
            "an index past a list",
            ok + "search_space:\n  model.conditional.mlp.layers.9.dim: [1, 2]\n",
            r"9",
        ),
        ("deep nesting", ok + "search_space: " + "[" * 50_000 + "\n", r"nest"),
        ("an alias bomb", ok + _laughs() + space, r"alias|expan"),
        ("a list as a key", ok + "search_space:\n  ? [a, b]\n  : [1, 2]\n", r""),
        ("a mapping at the top is a list", "- base.yaml\n", r""),
        ("escape sequences in a key", ok + 'search_space:\n  "\\e[2Jmodel.x": [1]\n', r""),
        ("not UTF-8", b"base: base.yaml\n\xff\n", r"UTF-8"),
    ]


def download_cases(folder: Path) -> list[tuple[str, list[str], str]]:
    """(name, download arguments, regex); sources and roots are made in ``folder``."""
    name = "binarized_mnist_test.amat"
    cases = []

    def source(label: str, make) -> str:
        where = folder / "sources" / f"{len(cases)}-{label.replace('/', '')}"
        where.mkdir(parents=True)
        make(where / name)
        return str(where)

    def args(src: str, root: str | None = None) -> list[str]:
        root = root or str(folder / "roots" / "fresh")
        return [
            "--source",
            src,
            "--data-path",
            root,
            "--splits",
            "test",
            "--expected-rows",
            "test=4",
            "--timeout",
            "5",
        ]

    row = amat(4)[0]
    makers = {
        "a FIFO": os.mkfifo,
        "/dev/zero": lambda p: p.symlink_to("/dev/zero"),
        "a folder": lambda p: p.mkdir(),
        "a broken link": lambda p: p.symlink_to(p.parent / "gone"),
        "letters": lambda p: p.write_bytes(row.replace(b"0", b"z")),
        "785 columns": lambda p: p.write_bytes(row.replace(b"\n", b" 0\n")),
        "values of 2": lambda p: p.write_bytes(row.replace(b"1", b"2")),
        "too many rows": lambda p: p.write_bytes(row * 3),
        "an empty file": lambda p: p.write_bytes(b""),
        "one endless line": lambda p: p.write_bytes(b"0 " * 5_000_000),
        "NUL bytes": lambda p: p.write_bytes(b"\0" * 10_000),
    }
    for label, make in makers.items():
        cases.append((label, args(source(label, make)), r"test|binarized_mnist_test"))
    good = source("good-but-unknown", lambda p: p.write_bytes(row))
    root_file = folder / "roots" / "a-file"
    root_file.parent.mkdir(parents=True, exist_ok=True)
    root_file.write_text("not a folder\n")
    cases.append(("a data path that is a file", args(good, str(root_file)), r"a-file"))
    cases.append(("no source", args(str(folder / "nowhere")), r"nowhere"))
    cases.append(("a negative timeout", [*args(good)[:-1], "-1"], r"timeout"))
    return cases


def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def build_plan(folder: Path) -> list[dict]:
    """Make every crafted file in ``folder``; the runs that must refuse them."""
    hh.make_folder(folder)
    os.mkfifo(folder / "fifo.pkl")
    (folder / "zero.pkl").symlink_to("/dev/zero")
    (folder / hp.SECRET).write_text("4242424\n")
    plan: list[dict] = []

    def add(name, program, argv, match=""):
        plan.append(
            {"name": name, "program": program, "argv": argv, "cwd": str(folder), "match": match}
        )

    # Model files: each case to one of the programs that read models, in turn.
    for i, (name, change, match) in enumerate(hh.make_cases()):
        path = folder / "h5" / f"{i:03d}.h5"
        path.parent.mkdir(exist_ok=True)
        shutil.copy(folder / "good.h5", path)
        with h5py.File(path, "r+") as handle:
            change(handle, folder)
        program = MODEL_PROGRAMS[i % len(MODEL_PROGRAMS)]
        add(f"h5: {name}", program, [str(path)], match)
    pickles = hp.walk_cases(str(folder)) + hp.direct_cases(str(folder))
    pickles += hp.opcode_cases(str(folder)) + hp.numpy_cases(str(folder))
    for i, case in enumerate(pickles):
        path = _write(folder / "pkl" / f"{i:03d}.pkl", case.data)
        program = MODEL_PROGRAMS[(i + 2) % len(MODEL_PROGRAMS)]
        add(f"pkl: {case.name}", program, [str(path)], case.match)
    # Output paths that are not regular files.
    good = str(folder / "good.h5")
    os.mkfifo(folder / "out-fifo")
    (folder / "out-folder").mkdir()
    for label, target in (
        ("a FIFO", "out-fifo"),
        ("a device", "/dev/null"),
        ("a folder", "out-folder"),
    ):
        add(
            f"--json to {label}",
            "evaluate",
            [good, "--json", target],
            r"FIFO|device|folder|director",
        )
        add(
            f"--out to {label}",
            "show_samples",
            [good, "--out", target],
            r"FIFO|device|folder|director",
        )
        add(
            f"nll_curve --json to {label}",
            "nll_curve",
            [good, "--json", target],
            r"FIFO|device|folder|director",
        )
        add(
            f"plot --out to {label}",
            "plot_monitor",
            [good, "--channels", "valid_objective", "--out", target],
            r"FIFO|device|folder|director",
        )
    # Outputs over the programs' own inputs, data files and names too long to write.
    (folder / "split.npy").write_bytes(b"\x93NUMPY not really")
    for program, flag in (
        ("evaluate", "--json"),
        ("show_samples", "--out"),
        ("nll_curve", "--json"),
    ):
        add(f"{program} {flag} over its model", program, [good, flag, good], r"this program reads")
        add(f"{program} {flag} over a data file", program, [good, flag, "split.npy"], r"refusing")
        add(f"{program} {flag} too long", program, [good, flag, "j" * 250 + ".x"], r"too long")
    add(
        "plot --out over its model",
        "plot_monitor",
        [good, "--channels", "valid_objective", "--out", good],
        r"this program reads",
    )
    # Training YAMLs.
    for i, (name, content, match, migrate) in enumerate(yaml_cases(folder)):
        path = _write(folder / "yaml" / f"{i:03d}.yaml", content)
        add(f"train: {name}", "train", [str(path)], match)
        if migrate:
            add(f"migrate: {name}", "migrate_yaml", [str(path), "-o", str(path) + ".out"], match)
    for label, target in (
        ("a FIFO", "fifo"),
        ("/dev/zero", "/dev/zero"),
        ("a folder", "h5"),
        ("nothing", "gone.yaml"),
    ):
        add(f"train: a YAML that is {label}", "train", [target], r"")
        add(f"migrate: a YAML that is {label}", "migrate_yaml", [target], r"")
    # Sweep files.
    _write(folder / "sweeps" / "base.yaml", TRAIN)
    for i, (name, content, match) in enumerate(sweep_cases(folder)):
        path = _write(folder / "sweeps" / f"{i:03d}.yaml", content)
        add(
            f"sweep: {name}",
            "sweep",
            [str(path), "--out", str(folder / "sweep-out" / str(i))],
            match,
        )
    # Download sources.
    for name, argv, match in download_cases(folder):
        add(f"download: {name}", "download", argv, match)
    return plan


def _tree(folder: Path) -> dict[str, str]:
    """Every regular file under ``folder`` and a digest of its bytes (links and FIFOs by name)."""
    tree = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            tree[str(path)] = "link" if path.is_symlink() else "other"
            continue
        tree[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, mnist_root):
    folder = tmp_path_factory.mktemp("corpus")
    work = folder / "work"
    work.mkdir()
    plan = build_plan(work)
    before = _tree(work)
    (folder / "plan.json").write_text(json.dumps(plan))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYLEARN2_DATA_PATH": str(mnist_root),
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.fork_runner",
            str(folder / "plan.json"),
            str(folder / "results.json"),
            "--memory",
            str(MEMORY_MIB),
            "--cpu",
            str(CPU_SECONDS),
            "--seconds",
            str(WALL_SECONDS),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((folder / "results.json").read_text())
    return work, plan, results, before, _tree(work)


def test_the_corpus_is_large_and_reaches_every_program(corpus):
    _, plan, results, _, _ = corpus
    assert len(results) == len(plan) >= 480
    reached = {case["program"] for case in plan}
    assert reached == {
        "train",
        "evaluate",
        "show_samples",
        "print_monitor",
        "plot_monitor",
        "migrate_yaml",
        "sweep",
        "download",
        "nll_curve",
    }


def _problems(case: dict, result: dict) -> list[str]:
    err = result["stderr"]
    problems = []
    if result["hung"]:
        problems.append(f"still running after {WALL_SECONDS} s")
    elif result["signal"] is not None:
        problems.append(f"killed by signal {result['signal']}")
    elif result["code"] not in (1, 2):
        problems.append(f"exit status {result['code']}")
    if "Traceback" in err or "Traceback" in result["stdout"]:
        problems.append("a traceback")
    if not any(line.startswith("error: ") for line in err.splitlines()):
        problems.append("no 'error:' line")
    if CONTROL.search(err) or CONTROL.search(result["stdout"]):
        problems.append("a control character in the output")
    if case["match"] and not re.search(case["match"], err):
        problems.append(f"no {case['match']!r} in the message")
    return problems


def test_every_crafted_input_is_refused_cleanly_within_the_limits(corpus):
    _, plan, results, _, _ = corpus
    failures = []
    for case, result in zip(plan, results, strict=True):
        problems = _problems(case, result)
        if problems:
            tail = result["stderr"].strip().splitlines()[-3:]
            failures.append(f"{case['name']} ({case['program']}): {', '.join(problems)}: {tail}")
    assert failures == [], f"{len(failures)} of {len(plan)}:\n" + "\n".join(failures)


def test_no_payload_acted_and_nothing_saved_changed(corpus):
    work, _, _, before, after = corpus
    assert [name for name in after if Path(name).name.startswith(hp.MARKER)] == []
    changed = [name for name in before if after.get(name) != before[name]]
    assert changed == []
    # What the runs added: empty folders, and the lock files of training runs
    # refused after their YAML was read (a lock file stays: see utils/locks.py).
    added = [name for name in after if name not in before and after[name] != "other"]
    assert [
        name for name in added if not re.fullmatch(r"\.\d{3}_checkpoint\.h5\.lock", Path(name).name)
    ] == []
    assert len(added) < 20
