"""Crafting HDF5 files no h5py call writes."""

import struct
from pathlib import Path


def forge_string_length(path, value: str, length: int) -> None:
    """Make the header of the string attribute holding ``value`` declare ``length`` bytes.

    h5py stores a ``str`` attribute as a variable-length string: the header
    holds its length and the address of the global heap collection ("GCOL")
    that holds the text. ``value`` must occur once in the file.
    """
    data = bytearray(Path(path).read_bytes())
    encoded = value.encode()
    text_at = data.find(encoded)
    heap_at = data.rfind(b"GCOL", 0, text_at)
    descriptor = struct.pack("<IQ", len(encoded), heap_at)
    at = data.find(descriptor)
    assert text_at > 0 and heap_at > 0 and at > 0 and data.find(descriptor, at + 1) < 0
    data[at : at + 4] = struct.pack("<I", length)
    Path(path).write_bytes(bytes(data))
