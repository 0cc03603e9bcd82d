"""Image grids and a dependency-free PNG writer."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from pylearn_vae.utils.files import atomic_write

__all__ = ["image_shape_for", "tile_grid", "write_png"]


def image_shape_for(nvis: int) -> tuple[int, int]:
    """(rows, cols) of one example drawn as an image: 784 -> 28 x 28, squares otherwise.

    >>> image_shape_for(784)
    (28, 28)
    """
    side = int(round(nvis**0.5))
    if side * side != nvis:
        raise ValueError(f"cannot draw {nvis}-dimensional examples as square images")
    return side, side


def tile_grid(
    images: np.ndarray, rows: int, cols: int, gap: int = 1, fill: float = 0.5
) -> np.ndarray:
    """Arrange ``images`` (n, h, w) in a rows x cols grid with ``gap`` pixels between."""
    n, h, w = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit in a {rows} x {cols} grid")
    grid = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap), fill, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def write_png(path, image: np.ndarray, scale: int = 1) -> None:
    """Write an image with values in [0, 1] as an 8-bit PNG (atomically).

    ``image`` is grayscale ``(rows, cols)`` or colour ``(rows, cols, 3)``.
    """
    image = np.asarray(image, dtype=np.float64)
    color = image.ndim == 3 and image.shape[2] == 3
    if image.ndim != 2 and not color:
        raise ValueError(f"expected a (rows, cols) or (rows, cols, 3) image, got {image.shape}")
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    height, width = pixels.shape[:2]
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2 if color else 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
    atomic_write(path, lambda handle: handle.write(png))
