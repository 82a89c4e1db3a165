"""Weblog models for the tests, with the files they point to: a product folder of (empty) FITS files named
the ALMA way, tiny PNG previews and short job logs. The QA scores cycle through all four bands, so that
every band shows and the filter has something to find."""

import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import Beam
from aperture_contracts.qa import QAMetric, QAScore
from aperture_export.weblog.model import (
    Figure,
    ImageRecord,
    JobRecord,
    ObservationSummary,
    SpwSummary,
    WeblogModel,
)

MOUS_ID = "uid://A001/X3a1/X7"
START = datetime(2025, 6, 1, 3, 37, 5, tzinfo=UTC)
SCORES = (0.95, 0.80, 0.50, 0.20)  # green, blue, yellow, red
# A name that must come out escaped, and that file names and anchors must survive.
HOSTILE_TARGET = 'Orion <b>KL</b> & "friends"'


@dataclass(frozen=True)
class WeblogCase:
    model: WeblogModel
    products: Path  # the product folder; the weblog is rendered into products/weblog
    weblog: Path


def tiny_png(path: Path, shade: int, size: int = 8) -> Path:
    """A greyscale PNG of `size` x `size` pixels with a diagonal gradient (a real, decodable image)."""
    rows = b"".join(b"\x00" + bytes((shade + 8 * (x + y)) % 256 for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def score(index: int, message: str) -> QAScore:
    value = SCORES[index % len(SCORES)]
    return QAScore(score=value, message=message, metric=QAMetric(name="rms_ratio", value=1 / value))


def target_names(count: int) -> list[str]:
    return [f"NGC {4000 + index}" for index in range(count)]


def build_case(root: Path, targets: list[str], num_spws: int, with_logs: bool = True) -> WeblogCase:
    """A finished MOUS: ingest, calibration (retried once), findcont per target x spw, continuum
    subtraction per target, and per target one aggregate continuum image, and one mfs image and one cube
    per spw (the last target's last cube failed)."""
    products, sources = root / "products", root / "sources"
    products.mkdir(parents=True)
    sources.mkdir()
    spw_ids = list(range(num_spws))
    jobs: list[JobRecord] = []
    images: list[ImageRecord] = []
    clock = iter(START + timedelta(seconds=30 * n) for n in range(10**6))

    def job(job_id: str, stage: Stage, state: JobState = JobState.SUCCEEDED, **fields: object) -> JobRecord:
        started = next(clock)
        log = None
        if with_logs and len(jobs) % 5 == 0:
            log = sources / f"{job_id}.log"
            log.write_text(f"2025-06-01 INFO {job_id} started\n2025-06-01 INFO {job_id} done\n")
        record = JobRecord(
            job_id=job_id, stage=stage, state=state, started_at=started, finished_at=started + timedelta(seconds=29),
            duration_s=29.0, log=log, **fields,  # type: ignore[arg-type]
        )
        jobs.append(record)
        return record

    job("ingest", Stage.INGEST, inputs={"package": "mous/input/package.tar"})
    job("calibration", Stage.CALIBRATION, attempts=2, messages=["attempt 1: the S3 server was unreachable; retried"],
        inputs={"measurement set": "uid___A002_Xsim_X1.ms"})
    for t, target in enumerate(targets):
        for spw in spw_ids:
            job(f"findcont-t{t}-spw{spw}", Stage.FINDCONT, target=target, spw_ids=[spw],
                qa=[score(t + spw, f"continuum fraction of spw {spw}")])
        job(f"contsub-t{t}", Stage.IMAGING, target=target, spw_ids=spw_ids, kind=ImagingKind.CONTSUB)
        plan = [(ImagingKind.CONT, spw_ids)] + [(kind, [spw]) for spw in spw_ids for kind in (ImagingKind.MFS,
                                                                                              ImagingKind.CUBE)]
        for number, (kind, spws) in enumerate(plan):
            job_id = f"{kind.value}-t{t}-spw{'_'.join(map(str, spws))}"
            failed = t == len(targets) - 1 and number == len(plan) - 1
            if failed:
                job(job_id, Stage.IMAGING, JobState.FAILED, target=target, spw_ids=spws, kind=kind, attempts=3,
                    messages=["CASA ran past its memory limit (48 GiB): image this cube in channel chunks"])
                continue
            qa = [score(t + number, f"rms is {1 / SCORES[(t + number) % 4]:.2f} x theoretical")]
            job(job_id, Stage.IMAGING, target=target, spw_ids=spws, kind=kind, qa=qa,
                inputs={"vis": f"uid___A002_Xsim_X1.ms.t{t}.contsub.ms", "threshold": "0.42 mJy", "niter": "1000"})
            images.append(_image(products, sources, target, spws, kind, job_id, qa, shade=16 * number))
    model = WeblogModel(
        observation=ObservationSummary(
            mous_id=MOUS_ID, project="2025.1.00042.S", targets=targets,
            spws=[SpwSummary(spw_id=spw, name=f"ALMA_RB_06#BB_{spw % 4 + 1}#SW-01#FULL_RES", num_channels=64,
                             centre_frequency_hz=230.5e9 + 2e9 * spw, bandwidth_hz=1.875e9,
                             min_frequency_hz=229.5625e9 + 2e9 * spw, max_frequency_hz=231.4375e9 + 2e9 * spw)
                  for spw in spw_ids],
            array="ALMA, 25 x 12 m", antennas=[f"DA{41 + n}" for n in range(25)],
            time_start=START, time_end=START + timedelta(minutes=27), measurement_sets=["uid___A002_Xsim_X1.ms"],
        ),
        pipeline_version="0.1.0", generated_at=START + timedelta(hours=2), jobs=jobs, images=images,
        product_links={"casa_commands.log": "casa_commands.log"},
    )
    (products / "casa_commands.log").write_text("# casa_commands.log\n")
    return WeblogCase(model=model, products=products, weblog=products / "weblog")


def _image(products: Path, sources: Path, target: str, spws: list[int], kind: ImagingKind, job_id: str,
           qa: list[QAScore], shade: int) -> ImageRecord:
    safe = "".join(c if c.isalnum() or c in "+-." else "_" for c in target)
    stem = f"{mous_key(MOUS_ID)}.{safe}_sci.spw{'_'.join(map(str, spws))}.{kind.value}.I"
    files = {role: f"{stem}.{role}.fits" for role in ("pbcor", "image", "pb", "residual", "mask")}
    for name in files.values():
        (products / name).write_bytes(b"")
    previews = [Figure(caption="Primary-beam corrected image", path=tiny_png(sources / f"{stem}.png", shade))]
    if kind is ImagingKind.CONT:
        previews.append(Figure(caption="Residual", path=tiny_png(sources / f"{stem}.residual.png", shade + 64)))
    return ImageRecord(
        kind=kind, target=target, spw_ids=spws, job_id=job_id, files=files, previews=previews,
        beam=Beam(major_arcsec=0.52, minor_arcsec=0.41, position_angle_deg=-71.5), cell_arcsec=0.08,
        imsize=[320, 320], num_channels=64 if kind is ImagingKind.CUBE else 1,
        frequency_min_hz=229.5e9 + 2e9 * spws[0], frequency_max_hz=231.4e9 + 2e9 * spws[-1],
        rms_jy=4.2e-4, peak_jy=0.031, theoretical_sensitivity_jy=3.1e-4, threshold_jy=8.4e-4, qa=qa,
        mitigation=["cell size raised from 0.04 to 0.08 arcsec: the cube was over 40 GB"]
        if kind is ImagingKind.CUBE and spws == [0] else [],
    )
