"""The weblog rendered from a model: its pages, what they show, valid HTML5 and links that all resolve."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aperture_contracts.enums import ImagingKind, Stage
from aperture_contracts.imaging import Beam, ImageProduct
from aperture_contracts.metadata import AntennaInfo, MeasurementSetInfo, MousMetadata, SpectralWindow
from aperture_contracts.qa import lowest_score
from aperture_contracts.storage import ObjectRef
from aperture_export.weblog.model import Figure, ImageRecord, ObservationSummary
from aperture_export.weblog.render import render_weblog
from html_pages import broken_links, page_facts
from weblog_factory import HOSTILE_TARGET, MOUS_ID


def page(weblog, name: str) -> str:
    return (weblog.case.weblog / name).read_text(encoding="utf-8")


def test_small_weblog_has_a_page_per_stage_and_per_image(small_weblog) -> None:
    weblog, model = small_weblog.case.weblog, small_weblog.case.model

    pages = sorted(path.relative_to(weblog).as_posix() for path in weblog.rglob("*.html"))

    assert len(model.images) == 9
    assert pages.count("index.html") == pages.count("tasks.html") == 1
    assert [p for p in pages if p.startswith("stages/")] == [
        f"stages/{s}.html" for s in sorted(("ingest", "calibration", "findcont", "imaging"))
    ]
    assert len([p for p in pages if p.startswith("images/")]) == len(model.images)
    assert sorted(p.name for p in (weblog / "static").iterdir()) == ["weblog.css", "weblog.js"]
    assert len(list((weblog / "previews").iterdir())) == sum(len(image.previews) for image in model.images)
    assert len(list((weblog / "logs").iterdir())) == sum(job.log is not None for job in model.jobs) > 0


@pytest.mark.parametrize("size", ["small", "large"])
def test_every_page_keeps_the_html5_rules(size: str, request) -> None:
    weblog = request.getfixturevalue(f"{size}_weblog").case.weblog

    errors = {
        path.relative_to(weblog).as_posix(): facts.errors
        for path in weblog.rglob("*.html") if (facts := page_facts(path.read_text(encoding="utf-8"))).errors
    }

    assert errors == {}


@pytest.mark.parametrize("size", ["small", "large"])
def test_every_link_resolves_to_a_file_in_the_product_folder(size: str, request) -> None:
    assert broken_links(request.getfixturevalue(f"{size}_weblog").case.weblog) == []


def test_the_link_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body>'
        '<a href="b.html">b</a><a href="a.html#nowhere">x</a><img src="https://cdn.example/x.png" alt="">'
        '<a href="#top">top</a></body></html>'
    )

    assert [problem.split(" ")[1] for problem in broken_links(tmp_path)] == [
        "b.html", "a.html#nowhere", "https://cdn.example/x.png", "#top"
    ]


def test_static_files_load_nothing_from_elsewhere(small_weblog) -> None:
    for path in (small_weblog.case.weblog / "static").iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?:|//[a-z]|@import|url\(|fetch\(|XMLHttpRequest|@font-face", text), path.name


def test_home_page_summarises_the_observation(small_weblog) -> None:
    home = page(small_weblog, "index.html")

    for expected in (MOUS_ID, "2025.1.00042.S", "ALMA, 25 x 12 m", "DA41, DA42", "uid___A002_Xsim_X1.ms",
                     "2025-06-01 03:37:05 UTC to 2025-06-01 04:04:05 UTC (27 min 00 s)", "230.500000 GHz",
                     "229.562500 GHz – 231.437500 GHz", "NGC 253", "Aperture 0.1.0"):
        assert expected in home, expected


def test_overall_qa_is_the_lowest_score_and_names_its_image(small_weblog) -> None:
    model = small_weblog.case.model
    lowest = lowest_score(s for image in model.images for s in image.qa)
    assert lowest is not None and model.overall_qa is not None and model.overall_qa.score == lowest.score == 0.2
    worst_image = next(image for image in model.images if lowest in image.qa)

    overall = page(small_weblog, "index.html").split('id="overall-qa"')[1].split("</section>")[0]

    assert '<span class="qa qa-red"' in overall and "0.20 red" in overall
    assert f"spw {','.join(map(str, worst_image.spw_ids))} {worst_image.kind.value}</a>" in overall


def test_by_task_page_gives_each_stage_its_lowest_band(small_weblog) -> None:
    model = small_weblog.case.model
    tasks = page(small_weblog, "tasks.html")

    headings = dict(re.findall(r'<h2 id="stage-(\w+)">.*?<span class="qa qa-(\w+)"', tasks))

    expected = {}
    for stage in ("ingest", "calibration", "findcont", "imaging"):
        lowest = lowest_score(s for job in model.jobs if job.stage == stage for s in job.qa)
        expected[stage] = "none" if lowest is None else lowest.band.value
    assert headings == expected
    assert expected["imaging"] == "red" and expected["ingest"] == "none"
    assert "CASA ran past its memory limit" in tasks  # the failed cube's message is among the stage's notes
    assert "<dt>Attempts</dt><dd>2</dd>" in tasks  # calibration was retried once


def test_stage_page_shows_each_jobs_state_timings_inputs_qa_and_log(small_weblog) -> None:
    model = small_weblog.case.model
    imaging = page(small_weblog, "stages/imaging.html")
    job = next(job for job in model.jobs if job.stage is Stage.IMAGING and job.log is not None and job.inputs)

    row = imaging.split(f'<tr id="job-{job.job_id}"')[1].split("</tr>")[0]

    assert f'<a href="../logs/{job.job_id}.log">log</a>' in row
    assert "2025-06-01" in row and "29.0 s" in row
    assert "<dt>threshold</dt><dd>0.42 mJy</dd>" in row
    assert job.qa[0].message in row
    assert 'class="state state-failed">failed' in imaging


def test_image_page_shows_figures_qa_and_links_to_the_fits_files(small_weblog) -> None:
    image = small_weblog.case.model.images[0]
    slug = "Orion_b_KL_b_friends_.spw0_1.cont"

    detail = page(small_weblog, f"images/{slug}.html")

    for expected in ("420 µJy/beam", "310 µJy/beam", "1.35 × theoretical", "840 µJy/beam", "0.52″ × 0.41″, PA -71.5°",
                     "320 × 320 pixels", "Residual", image.qa[0].message):
        assert expected in detail, expected
    for role, name in image.files.items():
        assert f'{role}: <a href="../../{name}">' in detail
    assert detail.count("<img ") == len(image.previews) == 2


def test_names_with_markup_are_escaped_everywhere(small_weblog) -> None:
    for path in small_weblog.case.weblog.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert "<b>KL</b>" not in text and '"friends"' not in text, path.name
    assert "Orion &lt;b&gt;KL&lt;/b&gt; &amp; &#34;friends&#34;" in page(small_weblog, "index.html")
    assert HOSTILE_TARGET in small_weblog.case.model.observation.targets


def test_large_weblog_renders_quickly_with_every_target_section_closed(large_weblog) -> None:
    weblog = large_weblog.case.weblog
    home = page(large_weblog, "index.html")
    sizes = {name: (weblog / name).stat().st_size for name in ("index.html", "tasks.html", "stages/imaging.html")}
    print(f"\nlarge weblog: {len(large_weblog.case.model.images)} images, {len(large_weblog.case.model.jobs)} jobs, "
          f"rendered in {large_weblog.render_s:.2f} s; page sizes {sizes}")

    assert large_weblog.render_s < 20
    assert home.count('<details class="group"') == 40 and " open>" not in home
    assert all(size < 1_500_000 for size in sizes.values()), sizes


def test_observation_summary_from_ingest_metadata() -> None:
    def spw(spw_id: int, centre: float) -> SpectralWindow:
        return SpectralWindow(spw_id=spw_id, num_channels=64, ref_frequency_hz=centre, centre_frequency_hz=centre,
                              bandwidth_hz=1e9, channel_width_hz=1.5e7, min_frequency_hz=centre - 5e8,
                              max_frequency_hz=centre + 5e8)

    def ms(name: str, hour: int, antennas: list[tuple[str, float]]) -> MeasurementSetInfo:
        return MeasurementSetInfo(
            name=name, observatory="ALMA", time_start=datetime(2025, 6, 1, hour, tzinfo=UTC),
            time_end=datetime(2025, 6, 1, hour, 30, tzinfo=UTC), exposure_s=600, num_rows=1, num_antennas=2,
            num_baselines=1, antennas=[AntennaInfo(antenna_id=n, name=a, diameter_m=d)
                                       for n, (a, d) in enumerate(antennas)],
            fields=[], spectral_windows=[spw(1, 2.3e11), spw(0, 2.2e11), spw(9, 1.8e11)], correlations=["XX"],
            intents=[], flagged_fraction=0, data_columns=["DATA"], has_calibrator_intents=True,
        )

    metadata = MousMetadata(
        measurement_sets=[ms("a.ms", 3, [("DA41", 12), ("CM01", 7)]), ms("b.ms", 5, [("DA41", 12), ("DA42", 12)])],
        science_targets=["NGC 253"], science_spw_ids=[0, 1], representative_spw=None, calibrated=False,
    )

    summary = ObservationSummary.from_metadata("uid___A001_X3a1_X7", metadata, project="2025.1.00042.S")

    assert summary.mous_id == MOUS_ID
    assert [s.spw_id for s in summary.spws] == [0, 1]
    assert summary.antennas == ["CM01", "DA41", "DA42"] and summary.array == "ALMA, 2 x 12 m, 1 x 7 m"
    assert (summary.time_start.hour, summary.time_end.hour) == (3, 5)
    assert summary.measurement_sets == ["a.ms", "b.ms"]


def test_image_record_from_an_imaging_product(tmp_path: Path) -> None:
    def ref(role: str) -> ObjectRef:
        return ObjectRef(key=f"mous/x/products/uid___A001_X3a1_X7.NGC_253_sci.spw0.mfs.I.{role}.fits",
                         sha256="0" * 64, size=1)

    product = ImageProduct(
        kind=ImagingKind.MFS, target="NGC 253", spw_ids=[0], pbcor=ref("pbcor"), image=ref("image"), pb=ref("pb"),
        extra=[ref("residual"), ref("mask")], beam=Beam(major_arcsec=1, minor_arcsec=0.5, position_angle_deg=3),
        cell_arcsec=0.1, imsize=[64, 64], num_channels=1, frequency_min_hz=2.2e11, frequency_max_hz=2.21e11,
        rms_jy=1e-3, peak_jy=1e-2, theoretical_sensitivity_jy=8e-4, threshold_jy=2e-3,
    )
    preview = Figure(caption="pbcor", path=tmp_path / "p.png")

    record = ImageRecord.from_product(product, [preview], job_id="mfs-t0-spw0")

    assert record.files == {role: ref(role).key.rsplit("/", 1)[1] for role in ("pbcor", "image", "pb", "residual",
                                                                              "mask")}
    assert (record.target, record.rms_jy, record.beam, record.job_id) == ("NGC 253", 1e-3, product.beam, "mfs-t0-spw0")


def test_rendering_into_a_folder_that_holds_files_is_refused(small_weblog) -> None:
    with pytest.raises(FileExistsError, match="not empty"):
        render_weblog(small_weblog.case.model, small_weblog.case.weblog)


def test_targets_table_counts_images_per_band(small_weblog) -> None:
    model = small_weblog.case.model
    home = page(small_weblog, "index.html")
    row = home.split('<a href="#target-NGC_253">NGC 253</a>')[1].split("</tr>")[0]

    bands = [image.lowest_qa.band.value for image in model.images if image.target == "NGC 253" and image.lowest_qa]
    counts = re.findall(r'<span class="qa qa-(\w+)">(\d+) \1</span>', row)
    assert sorted((band, int(count)) for band, count in counts) == sorted((b, bands.count(b)) for b in set(bands))

