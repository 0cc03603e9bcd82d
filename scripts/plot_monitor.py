#!/usr/bin/env python
"""Plot monitor channels of a saved model: python scripts/plot_monitor.py MODEL.pkl --channels valid_objective"""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.plot_monitor:main"))
