"""Every script in scripts/ has a console entry point calling the same function,
and the installed commands run."""

from __future__ import annotations

import configparser
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import script_target

ROOT = Path(__file__).resolve().parents[2]


def _entry_points() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_each_script_has_an_entry_point_to_the_same_function():
    targets = set(_entry_points().values())
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    assert scripts
    for script in scripts:
        assert script_target(script) in targets, f"{script.name} has no console entry point"


@pytest.mark.parametrize("name", sorted(_entry_points()))
def test_each_entry_point_resolves_to_a_function(name):
    module, function = _entry_points()[name].split(":")
    assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.subprocess
def test_an_installed_command_runs():
    """The README's install (pip install -e .) puts the commands next to the interpreter."""
    command = shutil.which("pylearn-vae-train", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.fail(
            "pylearn-vae-train is not installed next to this Python: reinstall the package "
            "(pip install -e .) so that its console entry points are created"
        )
    done = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "YAML" in done.stdout
