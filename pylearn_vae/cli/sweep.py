"""``scripts/sweep.py``: a hyper-parameter sweep of a training YAML on Ray Tune.

Local by default (a Ray instance on this machine, one trial per core, one
BLAS thread per trial); ``--address HOST:PORT`` (or ``RAY_ADDRESS``) runs the
same sweep on a running Ray cluster. Results go to ``--out`` (default: the
sweep file's name without ``.yaml``, plus ``_sweep``): ``results.csv``,
``results.json``, ``best.yaml``. ``--resume`` continues a sweep whose driver
was interrupted; finished trials are not run again.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from pylearn_vae.cli.common import (
    CLIError,
    add_mlflow_flag,
    check_path_flag,
    interrupted,
    mlflow_flag_problem,
    program,
    say,
)
from pylearn_vae.text import escape

__all__ = ["main", "format_table", "default_out_dir"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


def default_out_dir(sweep: str) -> Path:
    path = Path(sweep)
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    return path.parent / f"{stem}_sweep"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Sweep the hyper-parameters of a training YAML on Ray Tune "
        "(pip install -e '.[sweep]'); see docs/sweeps.md.",
    )
    parser.add_argument("sweep", help="sweep file: base YAML, search space, metric, epochs")
    parser.add_argument(
        "--address",
        default=None,
        metavar="HOST:PORT",
        help="run on the Ray cluster at this address (default: $RAY_ADDRESS, else a local "
        "Ray instance)",
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default: <sweep stem>_sweep beside the file)"
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="where trial checkpoints go (default: the output folder); on a cluster of "
        "several machines, a folder they all share or a cloud URI",
    )
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted sweep in the output folder"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start over although the output folder holds a sweep (its trials are deleted)",
    )
    add_mlflow_flag(parser, "each trial as a run of the experiment named after the sweep file")
    parser.add_argument("--quiet", action="store_true", help="do not print the results table")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own messages")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    return parser


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def format_table(rows, keys, metric: str) -> str:
    """The results as aligned text columns, best trial first."""
    header = ["trial", *keys, metric, "best epoch", "epochs", "status", "reason"]
    lines = [header]
    for row in rows:
        values = [row.config.get(k) for k in keys]
        lines.append(
            [
                row.trial_id,
                *map(_cell, values),
                _cell(row.best),
                _cell(row.best_epoch),
                str(row.epochs),
                row.status,
                row.reason,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1]
        for line in lines
    ).rstrip()


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    say(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _usage_problem(args) -> str | None:
    """What is wrong with a combination of options, or None."""
    if args.resume and args.restart:
        return "--restart and --resume contradict each other; choose one"
    if args.num_cpus is not None and args.num_cpus < 1:
        return f"--num-cpus must be >= 1, got {args.num_cpus}"
    if mlflow_flag_problem(args.mlflow):
        return mlflow_flag_problem(args.mlflow)
    if args.num_cpus is not None and args.address:
        return "--num-cpus is for a local Ray instance; a cluster has its own"
    for flag, value in (("--out", args.out), ("--storage", args.storage)):
        try:
            check_path_flag(flag, value)
        except CLIError as exc:
            return str(exc)
    return None


def _load_checked(path: str):
    """The sweep file at ``path``, its dotted keys checked against the base YAML.

    Raises :class:`~pylearn_vae.sweep.spec.SweepSpecError` before Ray starts.
    """
    from pylearn_vae.sweep.runner import make_plan
    from pylearn_vae.sweep.spec import load_spec

    spec = load_spec(path)
    make_plan(spec)
    return spec


def _resume_command(args) -> str:
    """The command that continues this sweep after an interruption."""
    return f"python scripts/sweep.py {args.sweep} --resume" + (
        f" --out {args.out}" if args.out else ""
    )


def _report(result, spec, quiet: bool, resume: str) -> int:
    """Print the results table and files of a finished sweep; return the exit status."""
    keys = [d.key for d in spec.dimensions]
    if not quiet:
        say(format_table(result.rows, keys, spec.metric))
    for name, path in result.files.items():
        say(f"{name}: {path}", file=sys.stderr)
    if result.unfinished:
        return _fail(
            f"the sweep stopped with {result.unfinished} trial(s) unfinished; continue it "
            f"with:  {resume}",
            130,
        )
    if result.best is None:
        return _fail("no trial finished an epoch without failing; see the reasons above")
    say(
        f"best: trial {result.best.trial_id}, {spec.metric} {result.best.best:.6g}; train it with:"
        f"  python scripts/train.py {result.files['best_yaml']}",
        file=sys.stderr,
    )
    return 0


@program
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    problem = _usage_problem(args)
    if problem is not None:
        return _fail(problem, EXIT_USAGE)
    from pylearn_vae.sweep.spec import SweepSpecError

    try:
        spec = _load_checked(args.sweep)
    except SweepSpecError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        import ray  # noqa: F401
    except ImportError:
        return _fail("sweeps need Ray Tune: pip install -e '.[sweep]'", EXIT_USAGE)
    from pylearn_vae.errors import MissingExtraError, TrackingError
    from pylearn_vae.sweep.runner import SweepError, run_sweep

    if not args.verbose:
        logging.getLogger("ray").setLevel(logging.ERROR)
    out = Path(args.out) if args.out else default_out_dir(args.sweep)
    resume = _resume_command(args)
    where = args.address or "the local Ray instance"
    resuming = " (resuming)" if args.resume else ""
    say(
        f"sweeping {args.sweep} on {where}; results in {out}{resuming}", file=sys.stderr, flush=True
    )
    try:
        result = run_sweep(
            spec,
            out,
            address=args.address,
            resume=args.resume,
            restart=args.restart,
            num_cpus=args.num_cpus,
            storage=args.storage,
            ray_log_level=logging.INFO if args.verbose else logging.ERROR,
            mlflow=args.mlflow,
        )
    except (SweepError, SweepSpecError, MissingExtraError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TrackingError as exc:
        return _fail(escape(str(exc)))
    except KeyboardInterrupt as exc:
        return interrupted(exc, f"; continue the sweep with:  {resume}")
    except Exception as exc:
        if args.debug:
            raise
        return _fail(f"{type(exc).__name__}: {exc}\n(run with --debug to see the traceback)")
    return _report(result, spec, args.quiet, resume)
