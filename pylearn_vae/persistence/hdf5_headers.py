"""Declared lengths of variable-length string attributes, read from HDF5 object headers.

h5py stores a ``str`` attribute as a variable-length string: the object
header holds its length and a pointer into the file's global heap. When the
attribute is read, HDF5 allocates and clears a buffer of the *declared*
length before it reads the string and notices a mismatch, so a forged length
(up to 4 GiB) costs that much memory and seconds of time. The HDF5 API has
no call that returns the declared length without that read.

:class:`HeaderReader` therefore reads the object header's bytes itself, in
the one layout pylearn_vae writes (version 1 object headers, the default of
h5py's ``libver="earliest"``): it follows continuation messages and reads the
first four bytes of each variable-length string attribute's value, which
are its length. Anything it cannot place (a version 2 header, a shared
attribute message) is left out, and the caller refuses the attribute.
Every read is bounded: at most ``MAX_CHUNKS`` header chunks of at most
``MAX_CHUNK_BYTES`` each.
"""

from __future__ import annotations

import struct

from h5py import h5o

from pylearn_vae.utils.files import ModelFileError

__all__ = ["HeaderReader", "MAX_CHUNKS", "MAX_CHUNK_BYTES"]

MAX_CHUNKS = 64
MAX_CHUNK_BYTES = 1 << 20

_CONTINUATION = 0x10
_ATTRIBUTE = 0x0C
_SHARED_MESSAGE = 0x02
_VLEN_CLASS = 9
_VLEN_STRING = 1
_UNSIGNED = {2: "H", 4: "I", 8: "Q"}


def _aligned(size: int) -> int:
    return (size + 7) & ~7


def _vlen_string_attribute(body: bytes) -> tuple[str, int] | None:
    """``(name, declared length)`` of an attribute message holding one variable-length string."""
    version = body[0] if body else 0
    if version == 1:
        start, pad = 8, _aligned
    elif version in (2, 3):
        if body[1] & 0x03:  # datatype or dataspace stored as a shared message
            return None
        start, pad = (8 if version == 2 else 9), int
    else:
        return None
    if len(body) < start:
        return None
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    name = body[start : start + name_size]
    datatype_at = start + pad(name_size)
    datatype = body[datatype_at : datatype_at + type_size]
    value_at = datatype_at + pad(type_size) + pad(space_size)
    value = body[value_at : value_at + 4]
    if (
        len(datatype) < 2
        or datatype[0] & 0x0F != _VLEN_CLASS
        or datatype[1] & 0x0F != _VLEN_STRING
        or len(value) < 4
    ):
        return None
    return name.rstrip(b"\0").decode("utf-8", "replace"), struct.unpack("<I", value)[0]


class HeaderReader:
    """Reads object headers of the open HDF5 file ``handle`` (a context manager).

    ``where`` names the file in errors.
    """

    def __init__(self, handle, where: str) -> None:
        plist = handle.id.get_create_plist()
        offset_size, length_size = plist.get_sizes()
        if offset_size not in _UNSIGNED or length_size not in _UNSIGNED:
            raise ModelFileError(
                f"{where}: HDF5 address sizes {offset_size}/{length_size} bytes; the file is damaged"
            )
        self._continuation = struct.Struct(f"<{_UNSIGNED[offset_size]}{_UNSIGNED[length_size]}")
        self._base = plist.get_userblock()
        self._path = handle.filename
        self._where = where
        self._raw = None

    def __enter__(self) -> HeaderReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def _read(self, address: int, size: int) -> bytes:
        if self._raw is None:
            self._raw = open(self._path, "rb")  # noqa: SIM115 (closed by close())
        self._raw.seek(self._base + address)
        data = self._raw.read(size)
        if len(data) != size:
            raise ModelFileError(
                f"{self._where}: an object header at byte {address:,} runs past the end of the "
                "file; the file is truncated or damaged"
            )
        return data

    def string_lengths(self, obj, path: str) -> dict[str, int]:
        """Declared length of every variable-length string attribute in ``obj``'s header.

        Empty for a header in another layout than version 1. ``path`` names
        the object in errors.
        """
        info = h5o.get_info(obj.id)
        if info.hdr.version != 1:
            return {}
        prefix = self._read(info.addr, 16)
        size = struct.unpack_from("<I", prefix, 8)[0]
        chunks = [(info.addr + 16, size)]
        lengths: dict[str, int] = {}
        read = 0
        while chunks:
            address, size = chunks.pop()
            read += 1
            if read > MAX_CHUNKS or size > MAX_CHUNK_BYTES:
                raise ModelFileError(
                    f"{self._where}: the object header of {path} has more than {MAX_CHUNKS} "
                    f"chunks or a chunk over {MAX_CHUNK_BYTES:,} bytes; the file is damaged"
                )
            data = self._read(address, size)
            position = 0
            while position + 8 <= len(data):
                kind, length, flags = struct.unpack_from("<HHB", data, position)
                body = data[position + 8 : position + 8 + length]
                position += 8 + length
                if kind == _CONTINUATION and len(body) >= self._continuation.size:
                    chunks.append(self._continuation.unpack_from(body))
                elif kind == _ATTRIBUTE and not flags & _SHARED_MESSAGE:
                    found = _vlen_string_attribute(body)
                    if found is not None:
                        name, declared = found
                        lengths[name] = max(declared, lengths.get(name, 0))
        return lengths
