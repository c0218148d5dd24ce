"""Parameter names carried from the YAML config to the result files of ``linlim fit`` and
``linlim sample`` (fit.h5, summary.json, chains.h5, summary.txt), read back from disk."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from linlim.cli import main
from linlim.errors import InputError, ShapeError
from linlim.io.chains import read_chains
from linlim.io.results import add_parameter_names, parameter_names, read_fit_file
from linlim.params import ParamBlock, Params

TINY = {
    "seed": 3,
    "array": {"hex_num": 2},
    "band": {"nfreq": 12},
    "times": {"ntimes": 2},
    "foregrounds": {"nsources": 3},
    "signal": {"enabled": False},
    "diffuse": {"enabled": False},
}
#: The beam keys a user writes under ``scenario.beam`` in YAML.
BEAM_KEYS = ["diameter_m", "spectral_index", "ripple_cos_m", "ripple_sin_m"]


def _run(tmp_path, command, extra):
    cfg = tmp_path / f"{command}.yaml"
    cfg.write_text(yaml.safe_dump({"scenario": TINY, "fit": {"maxiter": 3}, "plots": False,
                                   **extra}))
    out = tmp_path / command
    assert main([command, "--config", str(cfg), "--out", str(out)]) == 0
    return out


def test_fit_and_sample_files_carry_the_config_names(tmp_path, capsys):
    out = _run(tmp_path, "fit", {})
    fit = read_fit_file(out / "fit.h5")
    beam = [f"beam.{k}" for k in BEAM_KEYS]
    assert fit["names"][:6] == [f"fg_logflux[{i}]" for i in range(3)] + \
        [f"fg_index[{i}]" for i in range(3)]
    assert fit["names"][6:10] == beam
    assert fit["names"][10:] == [f"gains.{p}[{a}]" for p in ("ln_amp", "phase")
                                 for a in range(7)]
    # the truth under those names is the value written in the config (scenario.beam)
    from linlim.pipelines.scenario import SCENARIO_DEFAULTS

    truth = dict(zip(fit["names"], fit["truth"]))
    for k in BEAM_KEYS:
        assert truth[f"beam.{k}"] == SCENARIO_DEFAULTS["beam"][k]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["beam"]) == beam
    assert summary["beam"]["beam.diameter_m"]["map"] == fit["by_name"]["beam.diameter_m"][0]

    out = _run(tmp_path, "sample", {"hmc": {"chains": 1, "warmup": 4, "draws": 3}})
    chains = read_chains(out / "chains.h5")
    assert chains["names"] == fit["names"] and chains["draws"].shape == (1, 3, 24)
    table = (out / "summary.txt").read_text()
    assert all(name in table for name in beam)
    capsys.readouterr()


def test_parameter_names_rules_and_errors(tmp_path):
    p = Params([ParamBlock("g", (2, 3, 1)), ParamBlock("v", (2,), "complex128"),
                ParamBlock("one", (1, 1))])
    names = parameter_names(p, {"g": (0, ["amp", "phase"])})
    assert names[:3] == ["g.amp[0]", "g.amp[1]", "g.amp[2]"]
    assert names[6:] == ["v[0].re", "v[0].im", "v[1].re", "v[1].im", "one"]
    assert len(names) == p.size
    with pytest.raises(InputError, match="no block named"):
        parameter_names(p, {"beam": (0, ["a"])})
    with pytest.raises(ShapeError, match="expected 2 names along axis 0"):
        parameter_names(p, {"g": (0, ["a"])})
    # names are stored once, atomically; wrong counts and duplicates are refused
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["draws"] = np.zeros((1, 2, 3))
    add_parameter_names(path, ["a", "b", "c"])
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f["names"][()]] == ["a", "b", "c"]
    with pytest.raises(ShapeError, match="expected 3 names"):
        add_parameter_names(path, ["a", "b"])
    with pytest.raises(InputError, match="duplicates"):
        add_parameter_names(path, ["a", "a", "b"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]   # no temporaries left


def test_linlim_sample_killed_and_resumed_is_bit_identical(tmp_path, monkeypatch, capsys):
    """The ``linlim sample`` job (MAP fit, Fisher metric, HMC into chains.h5) killed after
    its second checkpoint and run again resumes to the same draws as an uninterrupted run,
    and the names are added once to the finished file."""
    from linlim.io.chains import ChainStore
    from linlim.pipelines.sample import run_sample

    cfg = {"scenario": TINY, "fit": {"maxiter": 3}, "plots": False,
           "hmc": {"chains": 1, "warmup": 4, "draws": 4, "checkpoint_every": 2,
                   "resume": True}}
    run_sample(cfg, str(tmp_path / "ref"))
    ref = read_chains(tmp_path / "ref" / "chains.h5")

    real = ChainStore.write_segment
    written = []

    def killed_after_two(self, *args, **kwargs):
        real(self, *args, **kwargs)
        written.append(1)
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ChainStore, "write_segment", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_sample(cfg, str(tmp_path / "run"))
    assert len(ChainStore(tmp_path / "run" / "chains.h5").segments()) == 2
    starts = []

    def counted(self, config, start, *args, **kwargs):
        starts.append(start)
        real(self, config, start, *args, **kwargs)

    monkeypatch.setattr(ChainStore, "write_segment", counted)
    run_sample(cfg, str(tmp_path / "run"))
    assert starts == [4, 6]                       # resumed: only the iterations left
    got = read_chains(tmp_path / "run" / "chains.h5")
    np.testing.assert_array_equal(got["draws"], ref["draws"])
    for k, v in ref["sample_stats"].items():
        np.testing.assert_array_equal(got["sample_stats"][k], v, err_msg=k)
    assert got["names"] == ref["names"] and "beam.diameter_m" in got["names"]
    capsys.readouterr()
