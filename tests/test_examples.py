"""The example scripts run end to end: the toolbox gallery writes its five PNGs, and the
gradient tutorial exits cleanly."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY = ("imaging_dirty_map.png", "gp_wiener_filter.png", "coupling_delay_signature.png",
           "redcal_gains.png", "stripe_modes.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")            # PYTHONPATH etc. inherited
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_toolbox_gallery_writes_five_pngs(tmp_path):
    out = tmp_path / "gallery"
    proc = _run([str(EXAMPLES / "toolbox_gallery.py"), str(out)], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = sorted(p.name for p in out.iterdir())
    assert made == sorted(GALLERY), made
    for name in GALLERY:
        data = (out / name).read_bytes()
        assert len(data) > 1000, (name, len(data))
        assert data[:8] == PNG_MAGIC, name


def test_gradients_vs_finite_differences_runs(tmp_path):
    proc = _run([str(EXAMPLES / "gradients_vs_finite_differences.py")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
