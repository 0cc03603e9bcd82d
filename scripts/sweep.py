#!/usr/bin/env python
"""Sweep a training YAML's hyper-parameters on Ray Tune: python scripts/sweep.py sweep.yaml"""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.sweep:main"))
