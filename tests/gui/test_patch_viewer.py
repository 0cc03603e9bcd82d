"""PatchViewer: grid layout, value mapping, errors, and show() with or without a viewer."""

import logging
import sys
import time
import zlib

import numpy as np
import pytest

from pylearn_vae.errors import UnsupportedOptionError
from pylearn_vae.gui.patch_viewer import PatchViewer


def read_png(path):
    """Decode the 8-bit, unfiltered PNGs that write_png produces."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    channels = {0: 1, 2: 3}[header[9]]
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()  # filter type "none"
    return rows[:, 1:].reshape(height, width, channels).squeeze(-1 if channels == 1 else ())


def test_patches_fill_the_grid_row_by_row_with_padding():
    pv = PatchViewer((2, 3), (2, 2), pad=(1, 1), background=0.5)
    for k in range(6):
        pv.add_patch(np.full((2, 2, 1), -1.0 + 0.4 * k), rescale=False)
    img = pv.get_img()
    assert img.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert img[0, 0] == 0.5 and img[3, 3] == 0.5  # padding
    for k in range(6):
        r, c = divmod(k, 3)
        top, left = 1 + 3 * r, 1 + 3 * c
        np.testing.assert_allclose(img[top : top + 2, left : left + 2], (0.4 * k) / 2)
    with pytest.raises(ValueError, match="is full"):
        pv.add_patch(np.zeros((2, 2)))
    pv.clear()
    assert pv.cur_pos == (0, 0) and (pv.get_img() == 0.5).all()


def test_rescale_and_recenter():
    pv = PatchViewer((1, 1), (3, 3), pad=(0, 0))
    pv.add_patch(np.array([[4.0]]), rescale=True, recenter=True)
    img = pv.get_img()
    assert img[1, 1] == 1.0 and img[0, 0] == 0.5


def test_bad_patches_are_refused():
    pv = PatchViewer((1, 2), (2, 2))
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        pv.add_patch(np.full((2, 2), 1.5), rescale=False)
    with pytest.raises(ValueError, match="does not fit"):
        pv.add_patch(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="is_color=True"):
        pv.add_patch(np.zeros((2, 2, 3)))
    with pytest.raises(UnsupportedOptionError, match="activation"):
        pv.add_patch(np.zeros((2, 2)), activation=0.5)
    with pytest.raises(ValueError, match="non-empty grid"):
        PatchViewer((0, 2), (2, 2))


def test_colour_patches_are_written_as_rgb(tmp_path):
    pv = PatchViewer((1, 1), (1, 2), is_color=True, pad=(0, 0))
    pv.add_patch(np.array([[[1.0, -1.0, 0.0], [-1.0, 1.0, 1.0]]]), rescale=False)
    pixels = read_png(pv.save(tmp_path / "c.png"))
    np.testing.assert_array_equal(pixels, [[[255, 0, 128], [0, 255, 255]]])


def test_show_without_a_viewer_writes_a_png_and_says_where(monkeypatch, caplog):
    monkeypatch.delenv("PYLEARN2_VIEWER_COMMAND", raising=False)
    pv = PatchViewer((1, 2), (2, 2), pad=(0, 0))
    pv.add_patch(-np.ones((2, 2)), rescale=False)
    pv.add_patch(np.ones((2, 2)), rescale=False)
    with caplog.at_level(logging.WARNING, logger="pylearn_vae.gui.patch_viewer"):
        path = pv.show()
    try:
        assert str(path) in caplog.text and "PYLEARN2_VIEWER_COMMAND" in caplog.text
        np.testing.assert_array_equal(read_png(path), [[0, 0, 255, 255]] * 2)
    finally:
        path.unlink()


@pytest.mark.subprocess
def test_show_runs_the_configured_viewer_on_the_png(monkeypatch, tmp_path):
    copy = tmp_path / "seen.png"
    script = f"import shutil, sys; shutil.copy(sys.argv[1], {str(copy)!r})"
    monkeypatch.setenv("PYLEARN2_VIEWER_COMMAND", f'{sys.executable} -c "{script}"')
    pv = PatchViewer((1, 1), (2, 2))
    pv.add_patch(np.eye(2), rescale=True)
    path = pv.show()
    try:
        deadline = time.monotonic() + 30
        while not copy.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert copy.read_bytes() == path.read_bytes()
    finally:
        path.unlink()
