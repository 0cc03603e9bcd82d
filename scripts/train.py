#!/usr/bin/env python
"""Train from a YAML file: python scripts/train.py yaml/vae_mnist.yaml"""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.train:main"))
