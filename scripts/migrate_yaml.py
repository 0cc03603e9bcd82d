#!/usr/bin/env python
"""Rewrite Pylearn2 names in a YAML file: python scripts/migrate_yaml.py IN.yaml -o OUT.yaml"""

import sys

from pylearn_vae.cli import launch

if __name__ == "__main__":
    sys.exit(launch("pylearn_vae.cli.migrate_yaml:main"))
