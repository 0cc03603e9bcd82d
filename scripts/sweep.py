#!/usr/bin/env python
"""Sweep a training YAML's hyper-parameters on Ray Tune: python scripts/sweep.py sweep.yaml"""

import sys

from pylearn_vae.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
