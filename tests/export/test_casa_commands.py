"""casa_commands.log: each call is a line of Python whose parameters parse back exactly, grouped by job."""

import ast
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aperture_contracts.enums import Stage
from aperture_contracts.events import CasaCall
from aperture_export.casa_commands import call_line, casa_commands_text, python_literal, write_casa_commands

MOUS = "uid://A001/X3a1/X7"
T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)


def call(task: str, seconds: float, duration: float, **parameters: object) -> CasaCall:
    return CasaCall(task=task, parameters=parameters, started_at=T0 + timedelta(seconds=seconds), duration_s=duration)


# Calls in run order; the two imaging jobs ran side by side, so their calls interleave.
RUN = [
    ("ingest", Stage.INGEST, call("flagdata", 0, 1.5, vis="/scratch/ingest/uid___A002_Xsim_X1.ms", mode="summary")),
    ("ingest", Stage.INGEST, call(
        "applycal", 2, 30.25, vis="/scratch/ingest/uid___A002_Xsim_X1.ms", gaintable=["cal/X1.bandpass", "cal/X1.g"],
        interp=["linear", "linear,linearflag"], spwmap=[[], [0, 0, 0, 0]], calwt=[False, False], gainfield=["", ""],
        applymode="calflagstrict", flagbackup=True,
    )),
    ("mfs-t0-spw0", Stage.IMAGING, call(
        "tclean", 40, 12.0, vis=["/scratch/a b/x.ms"], imagename="/scratch/SimGalaxy_sci.spw0.mfs.I.iter1",
        field="SimGalaxy", spw="0", specmode="mfs", deconvolver="hogbom", imsize=[320, 320], cell="0.08arcsec",
        weighting="briggs", robust=0.5, niter=1000, threshold="0.00042Jy", pblimit=0.2, nsigma=0.0,
        usemask="auto-multithresh", sidelobethreshold=2.0, noisethreshold=4.25, lownoisethreshold=1.5,
        negativethreshold=0.0, minbeamfrac=0.3, growiterations=75, restoringbeam=[], savemodel="none",
        parallel=False, phasecenter="ICRS 10:00:00.0 +02.00.00.0", restfreq="230.538GHz",
        outframe="LSRK", interpolation="linear", smallscalebias=0.0, scales=None, nterms=None,
        uvtaper=[], width=1, start=None, fractions=[0.1, 1 / 3, 2e-17, -1e300, 123456789.123456789],
    )),
    ("cube-t0-spw1", Stage.IMAGING, call(
        "tclean", 41, 50.0, vis=["/scratch/x.ms"], imagename="cube", specmode="cube", nchan=-1, start="",
        width="", restfreq="220.3987GHz", imsize=[128, 128], cell=["0.1arcsec", "0.1arcsec"], niter=0,
    )),
    ("mfs-t0-spw0", Stage.IMAGING, call(
        "exportfits", 53, 0.4, imagename="img.pbcor",
        fitsimage="uid___A001_X3a1_X7.SimGalaxy_sci.spw0.mfs.I.pbcor.fits",
        velocity=False, optical=False, bitpix=-32, minpix=0, maxpix=-1, overwrite=True, dropstokes=False,
        stokeslast=True, history=True, dropdeg=False,
    )),
    ("cube-t0-spw1", Stage.IMAGING, call(
        "ia.imageconcat", 92, 3.0, outfile="/scratch/cube.image", infiles=["c1.image", "c2.image"], axis=-1,
        relax=False, tempclose=True, overwrite=True, reorder=False, mode="p",
    )),
    ("ingest", Stage.INGEST, call("split", 100, 8.0, vis="x.ms", outputvis="y.ms", datacolumn="corrected",
                                  keepflags=True, note="quotes ' and \" and \\ and\nnewline and ünicode µJy")),
]


def parsed_calls(text: str) -> list[tuple[str, dict[str | None, Any]]]:
    """(task, parameters) of every call statement, evaluated only as literals."""
    calls = []
    for statement in ast.parse(text).body:
        assert isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call), ast.dump(statement)
        assert not statement.value.args
        parameters = {keyword.arg: ast.literal_eval(keyword.value) for keyword in statement.value.keywords}
        calls.append((ast.unparse(statement.value.func), parameters))
    return calls


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True are equal in Python, but not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def test_every_call_parses_back_to_its_task_and_exact_parameters() -> None:
    text = casa_commands_text(MOUS, RUN)

    by_job: dict[str, list[CasaCall]] = {}
    for job_id, _, recorded in RUN:
        by_job.setdefault(job_id, []).append(recorded)
    expected = [recorded for job_calls in by_job.values() for recorded in job_calls]
    parsed = parsed_calls(text)
    assert [task for task, _ in parsed] == [c.task for c in expected]
    for (task, parameters), recorded in zip(parsed, expected, strict=True):
        assert list(parameters) == list(recorded.parameters), task  # all of them, in the order given
        assert same_value(parameters, recorded.parameters), task


def test_calls_are_grouped_by_job_in_the_order_jobs_first_ran() -> None:
    lines = casa_commands_text(MOUS, RUN).splitlines()

    headers = [line for line in lines if line.startswith("# ---- job")]
    assert headers == [
        "# ---- job ingest | stage ingest | started 2026-11-21T13:00:00+00:00 | 108.000 s over 3 CASA calls",
        "# ---- job mfs-t0-spw0 | stage imaging | started 2026-11-21T13:00:40+00:00 | 13.400 s over 2 CASA calls",
        "# ---- job cube-t0-spw1 | stage imaging | started 2026-11-21T13:00:41+00:00 | 54.000 s over 2 CASA calls",
    ]
    calls = [line.split("(")[0] for line in lines if line and not line.startswith("#")]
    assert calls == ["flagdata", "applycal", "split", "tclean", "exportfits", "tclean", "ia.imageconcat"]
    assert "# tclean: started 2026-11-21T13:00:40+00:00, 12.000 s" in lines
    assert lines[0].startswith(f"# casa_commands.log of MOUS {MOUS}")


def test_each_call_is_one_line() -> None:
    text = casa_commands_text(MOUS, RUN)

    call_lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(call_lines) == len(RUN)
    assert call_line(RUN[-1][2]) in call_lines  # the newline inside a string parameter stays escaped


def test_non_finite_floats_are_written_so_that_they_evaluate_back() -> None:
    recorded = call("imstat", 0, 1, box=None, levels=[math.inf, -math.inf, math.nan])

    statement = ast.parse(call_line(recorded)).body[0]
    assert isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
    levels = eval(compile(ast.Expression(statement.value.keywords[1].value), "<levels>", "eval"),  # noqa: S307
                  {"__builtins__": {}, "float": float})
    assert levels[0] == math.inf and levels[1] == -math.inf and math.isnan(levels[2])


def test_parameter_names_that_are_not_identifiers_go_in_a_keyword_dict() -> None:
    recorded = call("mytool.run", 0, 1, vis="x.ms", **{"weird-name": 1, "class": "c"})

    line = call_line(recorded)

    assert line == "mytool.run(vis='x.ms', **{'weird-name': 1, 'class': 'c'})"
    assert ast.parse(line)


def test_literals_of_nested_values() -> None:
    assert python_literal((1,)) == "(1,)"
    assert python_literal({"a": [1, 2.5, None, True]}) == "{'a': [1, 2.5, None, True]}"
    assert python_literal(Stage.IMAGING) == "'imaging'"
    with pytest.raises(TypeError, match="datetime"):
        python_literal(T0)


def test_written_file_is_a_python_module(tmp_path) -> None:
    path = tmp_path / "casa_commands.log"

    write_casa_commands(path, MOUS, RUN)

    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    assert len(parsed_calls(path.read_text(encoding="utf-8"))) == len(RUN)
