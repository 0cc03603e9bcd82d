#!/usr/bin/env python
"""Print the final value of every monitor channel: python scripts/print_monitor.py MODEL.pkl"""

import sys

from pylearn_vae.cli.plot_monitor import print_main

if __name__ == "__main__":
    sys.exit(print_main())
