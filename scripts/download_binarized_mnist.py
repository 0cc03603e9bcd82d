#!/usr/bin/env python
"""Fetch, verify and install binarized MNIST. Run with --help for options."""

import sys

from pylearn_vae.cli.download_binarized_mnist import main

if __name__ == "__main__":
    sys.exit(main())
