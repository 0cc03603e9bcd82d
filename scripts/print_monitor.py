#!/usr/bin/env python
"""Print the final value of every monitor channel: python scripts/print_monitor.py MODEL.pkl"""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.plot_monitor:print_main"))
