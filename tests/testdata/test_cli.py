"""`aperture-make-mous` refuses bad input with a clear message before doing any work (or loading CASA)."""

from pathlib import Path

import pytest
from aperture_testdata.main import main


def test_list_scenarios_names_the_default(capsys):
    assert main(["--list-scenarios"]) == 0
    assert any(line.startswith("default: ") for line in capsys.readouterr().out.splitlines())


def test_outdir_is_required():
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scenario", "nope"], "no scenario named 'nope'; choose one of: "),
        (["--mous-uid", "not-a-uid"], "uid://A001/X2fa/X2dd"),
        (["--package", "out.zip"], "must be named *.tar, *.tar.gz or *.tgz"),
        (["--seed", "-1"], "non-negative"),
        (["--name", "a/b"], "plain file name"),
    ],
)
def test_bad_options_exit_2_with_what_to_do_and_create_nothing(tmp_path: Path, capsys, arguments, message):
    outdir = tmp_path / "out"
    assert main([str(outdir), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not outdir.exists()


@pytest.mark.casa
def test_an_existing_mous_is_refused_with_exit_2_and_kept(casa_tools, tmp_path: Path, capsys):
    outdir = tmp_path / "out"
    (outdir / "truth.json").parent.mkdir()
    (outdir / "truth.json").write_text("{}")
    assert main([str(outdir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (outdir / "truth.json").read_text() == "{}"
