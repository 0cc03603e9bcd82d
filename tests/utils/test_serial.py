"""Model files: atomic writes, allow-listed unpickling, clear errors."""

import errno
import os
import pickle

import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.compile import function
from pylearn_vae.persistence import ModelFileError, UnsafePickleError
from tests.helpers.models import binary_data, make_vae


@pytest.mark.compiles
def test_model_round_trip_gives_same_criterion(tmp_path):
    vae = make_vae(irange=0.5, seed=4)
    path = tmp_path / "m.pkl"
    persistence.save(path, vae)
    clone = persistence.load(path)
    assert [p.name for p in clone.get_params()] == [p.name for p in vae.get_params()]
    for a, b in zip(vae.get_param_values(), clone.get_param_values()):
        np.testing.assert_array_equal(a, b)
    x = binary_data(10, 12)
    kl = [
        function([X], m.log_likelihood_lower_bound(X, 1, return_individual_terms=True)[0])(x)
        for m in (vae, clone)
        for X in [m.get_input_space().make_theano_batch()]
    ]
    np.testing.assert_array_equal(kl[0], kl[1])
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pylearn_vae_pwned",))


def test_pickle_naming_a_function_is_refused_and_not_run(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    marker = "/tmp/pylearn_vae_pwned"
    if os.path.exists(marker):
        os.unlink(marker)
    with pytest.raises(
        UnsafePickleError,
        match=r"refers to (posix|os)\.system, which is not on pylearn_vae's allow-list",
    ):
        persistence.load(path)
    assert not os.path.exists(marker)


def test_pylearn2_pickle_gets_a_clear_message(tmp_path):
    path = tmp_path / "old.pkl"
    # A minimal pickle that names pylearn2.models.mlp.MLP (protocol 0 GLOBAL).
    path.write_bytes(b"cpylearn2.models.mlp\nMLP\n.")
    with pytest.raises(UnsafePickleError, match="written by Pylearn2/Theano"):
        persistence.load(path)


def test_corrupt_and_missing_files(tmp_path):
    path = tmp_path / "broken.pkl"
    persistence.save(path, make_vae())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="is not a valid pylearn_vae model file"):
        persistence.load(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        persistence.load(tmp_path / "none.pkl")
    with pytest.raises(ModelFileError, match="unknown extension '.txt'"):
        persistence.save(tmp_path / "m.txt", 1)


def test_full_disk_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pkl"
    persistence.save(path, {"version": 1})
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ModelFileError, match="the disk is full; the previous file .* is unchanged"):
        persistence.save(path, {"version": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert persistence.load(path) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pkl"]  # no temporary left behind
