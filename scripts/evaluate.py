#!/usr/bin/env python
"""See python scripts/evaluate.py --help."""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.evaluate:main"))
