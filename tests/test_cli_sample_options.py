"""``linlim sample`` exposes the checkpoint interval on the command line (config keys
``hmc.checkpoint_every`` / ``hmc.checkpoint_seconds``), checked like the config itself."""

import pytest

from linlim.cli import main


def test_checkpoint_flags_are_offered_and_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sample", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--checkpoint-every" in text and "--checkpoint-seconds" in text

    out = tmp_path / "run"
    assert main(["sample", "--checkpoint-every", "2.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "hmc.checkpoint_every" in err and "'2.5'" in err
    assert not out.exists()  # refused before the output folder is made
