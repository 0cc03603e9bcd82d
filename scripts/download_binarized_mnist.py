#!/usr/bin/env python
"""Fetch, verify and install binarized MNIST. Run with --help for options."""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.download_binarized_mnist:main"))
