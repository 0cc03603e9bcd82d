"""Text from files made safe for the terminal (``pylearn_vae.text``)."""

from __future__ import annotations

import pytest

from pylearn_vae.errors import ConfigError, DownloadError, ModelFileError
from pylearn_vae.text import escape, terminal_safe

HOSTILE = "tag\x1b]0;owned\x07\x1b[2J\rerror: forged\nerror: forged too\u202egnp.exe\x00\x9b"


def test_escape_leaves_one_printable_line():
    out = escape(HOSTILE)
    assert out.isprintable() and "\n" not in out
    assert out == (
        "tag\\x1b]0;owned\\x07\\x1b[2J\\rerror: forged\\nerror: forged too\\u202egnp.exe\\x00\\x9b"
    )
    assert escape("plain text, ünïcode") == "plain text, ünïcode"


def test_terminal_safe_keeps_only_line_breaks_and_tabs():
    out = terminal_safe("Monitoring step:\n\tvalid_objective: 99.5\x1b[31m")
    assert out == "Monitoring step:\n\tvalid_objective: 99.5\\x1b[31m"
    assert all(line.replace("\t", "").isprintable() for line in out.split("\n"))


@pytest.mark.parametrize("error", [ConfigError, ModelFileError, DownloadError])
def test_errors_quoting_file_text_are_one_escaped_line(error):
    message = str(error(f"bad name {HOSTILE!s}"))
    assert message.isprintable() and "\n" not in message and "\x1b" not in message
    assert "\\nerror: forged" in message
