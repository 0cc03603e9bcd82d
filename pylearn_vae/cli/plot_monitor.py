"""``scripts/plot_monitor.py`` and ``scripts/print_monitor.py``: the saved monitor history."""

from __future__ import annotations

import argparse
import sys

from pylearn_vae.cli.common import CLIError, check_output, load_model, program, run, say
from pylearn_vae.text import escape

__all__ = ["main", "print_main"]


def _monitor(path):
    model = load_model(path)
    monitor = model.monitor
    if monitor is None or not monitor.channels:
        raise CLIError(f"{path} has no monitor history (was it trained with scripts/train.py?)")
    return monitor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="plot_monitor.py",
        description="Plot monitor channels of a saved model "
        "against epochs; with no --channels, list the channels.",
    )
    p.add_argument("model", help="saved model (.h5, or a .pkl from pylearn_vae)")
    p.add_argument("--channels", default=None, help="comma-separated channel names")
    p.add_argument("--out", default="curves.png", help="PNG file to write (default curves.png)")
    p.add_argument("--log-y", action="store_true", help="logarithmic y axis")
    return p


def _plot(args) -> int:
    if args.channels:
        check_output(args.out, reads=[args.model], flag="--out")
    monitor = _monitor(args.model)
    if not args.channels:
        say("channels:")
        for name in sorted(monitor.channels):
            say(f"  {escape(name)}")
        return 0
    names = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = [c for c in names if c not in monitor.channels]
    if unknown:
        raise CLIError(
            f"unknown channel(s) {escape(', '.join(unknown))}; available: "
            f"{escape(', '.join(sorted(monitor.channels)))}"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError('plotting needs matplotlib: pip install -e ".[viz]"') from None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name in names:
        channel = monitor.channels[name]
        ax.plot(channel.epoch_record, channel.val_record, label=name)
    ax.set_xlabel("epochs seen")
    ax.set_ylabel("value")
    if args.log_y:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from pylearn_vae.utils.files import atomic_write

    try:
        atomic_write(args.out, lambda handle: fig.savefig(handle, format="png"))
    except Exception as exc:
        raise CLIError(f"cannot write {args.out}: {exc}") from None
    finally:
        plt.close(fig)
    say(f"wrote {escape(args.out)}", file=sys.stderr)
    return 0


@program
def main(argv=None) -> int:
    return run(_plot, build_parser().parse_args(argv))


def _print(args) -> int:
    monitor = _monitor(args.model)
    say(f"epochs seen: {monitor.get_epochs_seen()}, examples seen: {monitor.get_examples_seen()}")
    for name in sorted(monitor.channels):
        record = monitor.channels[name].val_record
        if record:
            value = f"{record[-1]:.6g}" if isinstance(record[-1], float) else str(record[-1])
            say(f"{escape(name)}: {escape(value)}")
    return 0


@program
def print_main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="print_monitor.py", description="Print the final value of every monitor channel."
    )
    p.add_argument("model", help="saved model (.h5, or a .pkl from pylearn_vae)")
    return run(_print, p.parse_args(argv))
