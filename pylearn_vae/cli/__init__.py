"""Command-line programs; ``scripts/*.py`` are thin wrappers around these."""
