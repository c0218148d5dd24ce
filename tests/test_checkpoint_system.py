"""The one checkpoint system (linlim.io.chains) and its optimiser user
(linlim.inference.checkpoint): round trips, old files, shared temporaries and fallback."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from linlim.errors import InputError
from linlim.inference.checkpoint import (
    CorruptCheckpointWarning,
    load_checkpoint,
    previous_checkpoint_path,
    save_checkpoint,
)
from linlim.io.chains import (
    CorruptChainWarning,
    CorruptFileError,
    atomic_h5,
    read_newest_good,
    read_tree,
    write_tree,
)


def test_optimizer_state_round_trip_keeps_types_and_bits(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5)
    state = {"it": 7, "f": 0.1 + 0.2, "done": True, "name": "wolfe", "none": None,
             "x": x, "S": [x, 2 * x], "lam": np.float64(1e-3)}
    path = tmp_path / "opt.h5"
    save_checkpoint(path, "lbfgs", state, {"loss": [3.0, 2.0]})
    got, hist = load_checkpoint(path, "lbfgs")
    assert got["it"] == 7 and type(got["it"]) is int
    assert got["f"] == 0.1 + 0.2 and type(got["f"]) is float
    assert got["done"] is True and got["name"] == "wolfe" and got["none"] is None
    np.testing.assert_array_equal(got["x"], x)
    np.testing.assert_array_equal(got["S"], np.stack([x, 2 * x]))
    assert got["lam"] == 1e-3
    np.testing.assert_array_equal(hist["loss"], [3.0, 2.0])


def _write_format_1(path, state, history, method="lbfgs"):
    """A checkpoint exactly as linlim wrote it before the shared checkpoint system."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "linlim-optimizer-checkpoint-1"
        f.attrs["method"] = method
        g = f.create_group("state")
        for k, v in state.items():
            if v is None:
                g.attrs[k] = "__none__"
            elif isinstance(v, (bool, int, float, str)):
                g.attrs[k] = v
            else:
                g.create_dataset(k, data=np.asarray(v))
        h = f.create_group("history")
        for k, v in history.items():
            h.create_dataset(k, data=np.asarray(v, dtype=np.float64))


def test_old_format_checkpoint_still_loads(tmp_path):
    path = tmp_path / "old.h5"
    _write_format_1(path, {"it": 3, "theta": 0.5, "msg": "ok", "m": None,
                           "x": np.arange(4.0)}, {"loss": [1.0, 0.5]})
    state, hist = load_checkpoint(path, "lbfgs")
    assert state["it"] == 3 and type(state["it"]) is int and state["theta"] == 0.5
    assert state["msg"] == "ok" and state["m"] is None
    np.testing.assert_array_equal(state["x"], np.arange(4.0))
    np.testing.assert_array_equal(hist["loss"], [1.0, 0.5])


def test_foreign_file_is_refused_with_its_format(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(InputError, match="not a linlim optimiser checkpoint.*something-else"):
        load_checkpoint(path, "lbfgs")


def test_rotation_and_shared_temporaries(tmp_path):
    path = tmp_path / "opt.h5"
    save_checkpoint(path, "adam", {"it": 1}, {})
    save_checkpoint(path, "adam", {"it": 2}, {})
    assert load_checkpoint(previous_checkpoint_path(path), "adam")[0]["it"] == 1
    # a dead writer's temporary, named as every atomic write names them
    stale = tmp_path / ".opt.h5.tmp999999999"
    stale.write_bytes(b"junk")
    legacy = tmp_path / ".ckpt-999999999-ab12.h5.tmp"   # and the name older linlim used
    legacy.write_bytes(b"junk")
    assert load_checkpoint(path, "adam")[0]["it"] == 2
    assert not stale.exists() and not legacy.exists()


def test_corrupt_checkpoint_warning_is_a_chain_warning(tmp_path):
    path = tmp_path / "opt.h5"
    save_checkpoint(path, "adam", {"it": 1}, {})
    save_checkpoint(path, "adam", {"it": 2}, {})
    path.write_bytes(b"\x00" * 10)
    with pytest.warns(CorruptChainWarning, match="previous"):
        assert load_checkpoint(path, "adam")[0]["it"] == 1
    assert issubclass(CorruptCheckpointWarning, CorruptChainWarning)


def test_atomic_h5_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.h5"
    atomic_h5(path, lambda f: f.attrs.__setitem__("v", 1))

    def boom(f):
        f.attrs["v"] = 2
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_h5(path, boom, keep_previous=tmp_path / "a.prev")
    with h5py.File(path, "r") as f:
        assert f.attrs["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_read_newest_good_skips_and_reports(tmp_path):
    files = [tmp_path / f"g{k}" for k in range(3)]
    for k, p in enumerate(files):
        p.write_text(str(k))

    def read(p: Path):
        if p.read_text() == "0":
            raise CorruptFileError(f"{p.name} damaged")
        return int(p.read_text())

    seen = []
    k, val, why = read_newest_good(files, read, on_corrupt=lambda p, r: seen.append(p.name))
    assert (k, val, why, seen) == (1, 1, ["g0 damaged"], ["g0"])
    assert read_newest_good(files[:1], read)[:2] == (-1, None)


def test_tree_round_trip_with_none_and_scalars(tmp_path):
    tree = {"a": {"b": np.arange(3), "s": "txt", "n": None}, "v": 2.5}
    with h5py.File(tmp_path / "t.h5", "w") as f:
        write_tree(f, tree)
        write_tree(f.create_group("attrs"), {"i": 4, "n": None}, scalar_attrs=True)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        got = read_tree(f)
    np.testing.assert_array_equal(got["a"]["b"], np.arange(3))
    assert got["a"]["s"] == "txt" and got["a"]["n"] is None and got["v"] == 2.5
    assert got["attrs"] == {"i": 4, "n": None} and type(got["attrs"]["i"]) is int
