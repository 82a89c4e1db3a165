"""Builders of the things coordinator tests feed in (metadata, events, packages) and read back."""

import hashlib
import io
import json
import random
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aperture_contracts.continuum import ContinuumCase, ContinuumRanges, FrequencyRange
from aperture_contracts.enums import ErrorClass, ImagingKind, JobState, MousState, Stage
from aperture_contracts.events import (
    CalibrationMode,
    CalibrationResult,
    FindcontResult,
    ImagingResult,
    IngestResult,
    JobFailed,
    JobStarted,
    JobSucceeded,
)
from aperture_contracts.ids import mous_key
from aperture_contracts.imaging import Beam, ImageProduct
from aperture_contracts.metadata import FieldInfo, MeasurementSetInfo, MousMetadata, SpectralWindow
from aperture_contracts.products import PreviewFile, PreviewRole, PreviewsResult
from aperture_contracts.qa import QAMetric, QAScore
from aperture_contracts.storage import ObjectRef
from aperture_coordinator.db import Database
from aperture_coordinator.models import Job, Mous, OutboxMessage
from aperture_coordinator.settings import CoordinatorSettings
from aperture_coordinator.state import Coordinator, Submission
from aperture_shared.errors import StorageError
from sqlalchemy import select

MOUS_ID = "uid://A001/X2fa/X2dd"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_ref(key: str, data: bytes = b"x", content_type: str = "application/octet-stream") -> ObjectRef:
    return ObjectRef(key=key, sha256=sha256_hex(data), size=len(data), content_type=content_type)


class InMemoryObjectStore:
    """The object store's synchronous interface, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def ensure_bucket(self) -> None:
        return None

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectRef:
        self.objects[key] = (data, content_type)
        return object_ref(key, data, content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectRef:
        return self.put_bytes(key, path.read_bytes(), content_type)

    def stat(self, key: str) -> ObjectRef:
        if key not in self.objects:
            raise StorageError(f"looking up {key} failed: the object does not exist")
        data, content_type = self.objects[key]
        return object_ref(key, data, content_type)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def presigned_get(self, key: str, expires: timedelta) -> str:
        return f"https://store.invalid/aperture/{key}?expires={int(expires.total_seconds())}"

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)

    def get_bytes(self, ref: ObjectRef | str) -> bytes:
        return self.objects[ref if isinstance(ref, str) else ref.key][0]


def metadata_for(targets: dict[str, list[int]], science_spws: list[int] | None = None) -> MousMetadata:
    """An observation of the given targets, each observed in the given spws."""
    observed = sorted({spw for spws in targets.values() for spw in spws})
    spw_ids = science_spws if science_spws is not None else observed
    windows = [
        SpectralWindow(
            spw_id=spw, num_channels=128, ref_frequency_hz=230e9 + spw * 1e9,
            centre_frequency_hz=230.1e9 + spw * 1e9, bandwidth_hz=1.875e9, channel_width_hz=15.6e6,
            min_frequency_hz=230e9 + spw * 1e9, max_frequency_hz=231.875e9 + spw * 1e9,
        )
        for spw in spw_ids
    ]
    fields = [
        FieldInfo(
            field_id=index, name=name, ra_deg=40.0 + index, dec_deg=-0.5,
            intents=["OBSERVE_TARGET#ON_SOURCE"], is_science_target=True, spw_ids=spws,
        )
        for index, (name, spws) in enumerate(targets.items())
    ]
    ms = MeasurementSetInfo(
        name="uid___A002_X1_X2.ms", observatory="ALMA", time_start=datetime(2019, 1, 1),
        time_end=datetime(2019, 1, 1, 1), exposure_s=3000.0, num_rows=1000, num_antennas=43,
        num_baselines=903, antennas=[], fields=fields, spectral_windows=windows, correlations=["XX", "YY"],
        intents=["OBSERVE_TARGET#ON_SOURCE"], flagged_fraction=0.1, data_columns=["DATA"],
        has_calibrator_intents=False,
    )
    return MousMetadata(
        measurement_sets=[ms], science_targets=list(targets), science_spw_ids=spw_ids,
        representative_spw=None, calibrated=False,
    )


def grid_metadata(targets: int, spws: int) -> MousMetadata:
    """N targets, each observed in all M spws."""
    spw_ids = [17 + 2 * index for index in range(spws)]
    return metadata_for({f"Target {index + 1}": list(spw_ids) for index in range(targets)}, spw_ids)


def started(job_id: str, attempt: int = 1, *, at: datetime, worker: str = "ingest-a:101",
            stage: Stage = Stage.INGEST, mous_id: str = MOUS_ID) -> JobStarted:
    return JobStarted(mous_id=mous_id, job_id=job_id, attempt=attempt, stage=stage, worker=worker, at=at)


def ingest_succeeded(job_id: str = "r1.ingest", attempt: int = 1, *, at: datetime,
                     metadata: MousMetadata, mous_id: str = MOUS_ID) -> JobSucceeded:
    prefix = f"mous/{mous_key(mous_id)}"
    work = f"{prefix}/work/{job_id}/"
    ms = object_ref(work + "uid___A002_X1_X2.ms.tar", b"measurement set")
    report = object_ref(f"{prefix}/products/ingest-report.json", b'{"ok": true}', "application/json")
    return JobSucceeded(
        mous_id=mous_id, job_id=job_id, attempt=attempt, stage=Stage.INGEST, worker="ingest-a:101", at=at,
        duration_s=12.5, outputs=[ms, report],
        result=IngestResult(metadata=metadata, measurement_sets=[ms], report=report),
        qa=[QAScore(score=0.95, message="little flagged", metric=QAMetric(name="flagged", value=0.1))],
        log=object_ref(work + f"logs/attempt-{attempt}.casa.log", b"casa log", "text/plain"),
    )


def stage_succeeded(job_id: str, stage: Stage, attempt: int = 1, *, at: datetime, mous_id: str = MOUS_ID,
                    target: str | None = None, spw_id: int | None = None, kind: str = "") -> JobSucceeded:
    """Success of a job of a later stage, with the result type of its stage (later stages' job messages
    are built from them); stages whose result type the contracts do not define yet carry ingest's shape."""
    event = ingest_succeeded(job_id, attempt, at=at, metadata=grid_metadata(0, 0), mous_id=mous_id)
    work = f"mous/{mous_key(mous_id)}/work/{job_id}/"
    output = object_ref(work + "out.fits", job_id.encode())
    update: dict[str, object] = {"stage": stage, "outputs": [output], "qa": [], "log": None}
    if stage == Stage.CALIBRATION:
        calibrated = object_ref(work + "uid___A002_X1_X2.ms.tar", b"calibrated")
        update["outputs"] = [calibrated]
        update["result"] = CalibrationResult(
            mode=CalibrationMode.CALIBRATED, flux_scale_known=True, measurement_sets=[calibrated],
            summary="calibrated from the bandpass, flux and phase calibrators",
        )
    elif stage == Stage.FINDCONT and target is not None and spw_id is not None:
        cont_dat = object_ref(work + "cont.dat", b"Field: x")
        update["outputs"] = [cont_dat]
        update["result"] = FindcontResult(
            continuum=ContinuumRanges(
                target=target, spw_id=spw_id, ranges=[FrequencyRange(low_hz=230.0e9, high_hz=230.4e9)],
                channel_ranges="0~25", case=ContinuumCase.LINES_AND_CONTINUUM, source="findcont",
                continuum_fraction=0.2,
            ),
            cont_dat=cont_dat,
        )
    elif stage == Stage.IMAGING and target is not None:
        subtracted = []
        spw_ids = [spw_id] if spw_id is not None else [17]
        if kind == "contsub":
            subtracted = [object_ref(work + "uid___A002_X1_X2.contsub.ms.tar", job_id.encode())]
        images = [] if kind == "contsub" else [image_product(work, ImagingKind(kind), target, spw_ids)]
        update["result"] = ImagingResult(
            kind=ImagingKind(kind), target=target, spw_ids=spw_ids, measurement_sets=subtracted, images=images,
        )
    elif stage == Stage.PREVIEWS and target is not None:
        png = object_ref(work + "quicklook.png", job_id.encode(), "image/png")
        update["outputs"] = [png]
        update["result"] = PreviewsResult(
            kind=kind, target=target, spw_ids=[spw_id] if spw_id is not None else [17],
            files=[PreviewFile(role=PreviewRole.QUICKLOOK, file=png)],
        )
    return event.model_copy(update=update)


def image_product(work: str, kind: ImagingKind, target: str, spw_ids: list[int]) -> ImageProduct:
    """An image as an imaging job reports it (FITS in the job's work prefix, plausible figures)."""
    return ImageProduct(
        kind=kind, target=target, spw_ids=spw_ids, pbcor=object_ref(work + "image.pbcor.fits", b"pbcor"),
        image=object_ref(work + "image.fits", b"image"), pb=object_ref(work + "image.pb.fits", b"pb"),
        beam=Beam(major_arcsec=1.9, minor_arcsec=1.5, position_angle_deg=80.0), cell_arcsec=0.3,
        imsize=[150, 150], num_channels=64 if kind == ImagingKind.CUBE else 1, frequency_min_hz=230.0e9,
        frequency_max_hz=231.0e9, rms_jy=1e-3, peak_jy=0.03, theoretical_sensitivity_jy=9e-4, threshold_jy=2e-3,
    )


def failed(job_id: str, error_class: ErrorClass, attempt: int = 1, *, at: datetime,
           message: str = "the object store is unreachable", stage: Stage = Stage.INGEST,
           mous_id: str = MOUS_ID) -> JobFailed:
    return JobFailed(
        mous_id=mous_id, job_id=job_id, attempt=attempt, stage=stage, worker="ingest-a:101", at=at,
        duration_s=3.0, error_class=error_class, message=message,
        detail="Traceback (most recent call last): ...",
    )


def job_states(database: Database, mous_id: str = MOUS_ID, run: int | None = None) -> dict[str, JobState]:
    with database.transaction() as session:
        query = select(Job.job_id, Job.state).where(Job.mous_id == mous_id).order_by(Job.pk)
        if run is not None:
            query = query.where(Job.run == run)
        return {job_id: state for job_id, state in session.execute(query)}


def load_job(database: Database, job_id: str, mous_id: str = MOUS_ID) -> Job:
    with database.transaction() as session:
        job = session.scalar(select(Job).where(Job.mous_id == mous_id, Job.job_id == job_id))
        assert job is not None, f"no job {job_id}"
        _ = job.attempts, job.depends_on  # loaded before the session closes
        return job


def load_mous(database: Database, mous_id: str = MOUS_ID) -> Mous:
    with database.transaction() as session:
        mous = session.get(Mous, mous_id)
        assert mous is not None, f"no MOUS {mous_id}"
        return mous


def outbox(database: Database) -> list[OutboxMessage]:
    with database.transaction() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def tar_package(files: dict[str, bytes]) -> bytes:
    """An in-memory tar archive holding the given files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def restore_manifest(mous_uid: str | None) -> bytes:
    return json.dumps({"kind": "aperture.restore-manifest", "mous_uid": mous_uid, "apply": []}).encode()


def dispatched(database: Database) -> list[str]:
    return [job_id for job_id, state in job_states(database).items() if state == JobState.DISPATCHED]


class FakeClock:
    """A clock the test moves by hand (retry backoff and silence limits are about time)."""

    def __init__(self) -> None:
        self.now = datetime(2025, 11, 21, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def run_wave(coordinator: Coordinator, database: Database, clock: FakeClock) -> list[str]:
    """Start and finish every job dispatched now; returns them."""
    wave = dispatched(database)
    for job_id in wave:
        stage = load_job(database, job_id).stage
        coordinator.apply_event(started(job_id, at=clock.advance(1), stage=stage, worker=f"{stage.value}:1"))
        if stage == Stage.INGEST:
            coordinator.apply_event(ingest_succeeded(at=clock.advance(1), metadata=grid_metadata(2, 2)))
        else:
            job = load_job(database, job_id)
            coordinator.apply_event(stage_succeeded(
                job_id, stage, at=clock.advance(1), target=job.target, spw_id=job.spw_id, kind=job.kind
            ))
    return wave


def process_to_completion(database: Database, settings: CoordinatorSettings) -> None:
    """Submit MOUS_ID and succeed every job of its graph, wave by wave, until the MOUS is completed."""
    clock = FakeClock()
    coordinator = Coordinator(database, settings, clock=clock, rng=random.Random(1))
    package = object_ref("mous/uid___A001_X2fa_X2dd/input/uid___A001_X2fa_X2dd.ms.tar", b"package")
    coordinator.submit(Submission(MOUS_ID, package, "uid___A001_X2fa_X2dd.ms.tar"))
    while run_wave(coordinator, database, clock):
        pass
    assert load_mous(database).state is MousState.COMPLETED


def request_job_succeeded(job: Job, *, at: datetime, rms_ratio: float = 1.05) -> JobSucceeded:
    """Success of a job of a request version: its files under the version's folder, as the workers store
    them, and an image whose rms is `rms_ratio` x its theoretical sensitivity."""
    prefix = str(job.params["products_prefix"])
    base = f"{prefix}{job.job_id.split('.', 2)[2]}"
    spw_ids = [job.spw_id] if job.spw_id is not None else list(job.params.get("spw_ids", [17]))  # type: ignore[call-overload]
    if job.stage == Stage.IMAGING:
        image = image_product(base + ".", ImagingKind(job.kind), job.target or "", spw_ids).model_copy(
            update={"rms_jy": 9e-4 * rms_ratio, "qa": [QAScore(
                score=0.95, message="beam as expected", metric=QAMetric(name="beam_over_expected", value=1.02),
            )]}
        )
        outputs = [image.pbcor, image.image, image.pb]
        result: ImagingResult | PreviewsResult = ImagingResult(
            kind=ImagingKind(job.kind), target=job.target or "", spw_ids=spw_ids, images=[image]
        )
    else:
        png = object_ref(base + ".quicklook.png", job.job_id.encode(), "image/png")
        outputs = [png]
        result = PreviewsResult(
            kind=job.kind, target=job.target or "", spw_ids=spw_ids,
            files=[PreviewFile(role=PreviewRole.QUICKLOOK, file=png)],
        )
    return JobSucceeded(
        mous_id=job.mous_id, job_id=job.job_id, attempt=job.attempt, stage=job.stage, worker=f"{job.stage.value}:1",
        at=at, duration_s=4.0, outputs=outputs, result=result, qa=[], log=None,
    )


def request_jobs(database: Database, request_id: str, version: int = 1) -> list[Job]:
    with database.transaction() as session:
        return list(session.scalars(
            select(Job).where(Job.job_id.startswith(f"{request_id}.v{version}.")).order_by(Job.pk)
        ))


def run_request_wave(
    coordinator: Coordinator, database: Database, clock: FakeClock, request_id: str, version: int = 1,
    *, rms_ratio: float = 1.05,
) -> list[str]:
    """Start and finish every dispatched job of a request version; returns them."""
    wave = [job for job in request_jobs(database, request_id, version) if job.state == JobState.DISPATCHED]
    for job in wave:
        coordinator.apply_event(started(
            job.job_id, at=clock.advance(1), stage=job.stage, worker=f"{job.stage.value}:1", mous_id=job.mous_id
        ))
        coordinator.apply_event(request_job_succeeded(job, at=clock.advance(1), rms_ratio=rms_ratio))
    return [job.job_id for job in wave]
