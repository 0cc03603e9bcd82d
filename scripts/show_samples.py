#!/usr/bin/env python
"""See python scripts/show_samples.py --help."""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.show_samples:main"))
