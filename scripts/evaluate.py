#!/usr/bin/env python
"""See python scripts/evaluate.py --help."""

import sys

from pylearn_vae.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
