"""Text from files and servers made safe to show on a terminal.

A model file's attribute, a YAML tag (``%1B`` decodes to ESC), a link name
or a server's header may hold terminal control sequences (which move the
cursor, rewrite the title or the screen) or a newline followed by a forged
``error:`` line. :func:`escape` writes every character that is not printable
as a Python escape (``\\x1b``, ``\\n``, ``\\u202e``); :func:`terminal_safe`
does the same but keeps the line breaks and tabs of a message the package wrote.
The programs pass everything they print through :func:`terminal_safe`, and
the package escapes file text with :func:`escape` where it puts it in a message.
"""

from __future__ import annotations

__all__ = ["escape", "terminal_safe"]


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text) -> str:
    """``text`` with every non-printable character (controls, line breaks, format
    characters such as right-to-left overrides) written as an escape; one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def terminal_safe(text) -> str:
    """:func:`escape` for each line of ``text``, keeping its line breaks and tabs
    (the monitor's report indents with tabs, as Pylearn2's does)."""
    text = str(text)
    if text.isprintable():
        return text
    return "\n".join(
        "\t".join(escape(part) for part in line.split("\t")) for line in text.split("\n")
    )
