"""Builders for the campaign tests (coordinator and CLI): an archive of small packages in an in-memory store
that can list a prefix, the metadata ingest would find in one, and a driver that plays the workers of the
MOUS a campaign submitted."""

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime

from aperture_contracts.enums import ErrorClass, JobState, Stage
from aperture_contracts.events import JobEvent
from aperture_contracts.ids import mous_key
from aperture_contracts.metadata import (
    AntennaInfo,
    FieldInfo,
    MeasurementSetInfo,
    MousMetadata,
    RepresentativeSpw,
    SpectralWindow,
)
from aperture_coordinator.db import Database
from aperture_coordinator.models import Job, Mous
from aperture_coordinator.state import Coordinator
from sqlalchemy import select

from .factories import (
    FakeClock,
    InMemoryObjectStore,
    failed,
    grid_metadata,
    ingest_succeeded,
    stage_succeeded,
    started,
)

ARCHIVE = "archive/cycle10/"


class ListingObjectStore(InMemoryObjectStore):
    """The in-memory store, listing a prefix too (what scan_prefix needs)."""

    def list(self, prefix: str) -> Iterator[str]:
        return iter(sorted(key for key in self.objects if key.startswith(prefix)))


def archive_mous_id(index: int) -> str:
    return f"uid://A001/X{index + 100:x}/X1"


def archive_key(index: int) -> str:
    return f"{ARCHIVE}{mous_key(archive_mous_id(index))}.ms.tar"


def fill_archive(store: ListingObjectStore, count: int, *, size: int = 1000) -> list[dict[str, str]]:
    """`count` packages under ARCHIVE (package i holds `size` + i bytes); the members that name them."""
    members = []
    for index in range(count):
        store.put_bytes(archive_key(index), bytes(size + index), "application/x-tar")
        members.append({"mous_id": archive_mous_id(index), "object_key": archive_key(index)})
    return members


ANTENNAS = {"12m": ("DA", 12.0), "7m": ("CM", 7.0), "TP": ("PM", 12.0)}


def observed(
    *, array: str = "12m", frequency_hz: float = 230e9, spws: int = 4, channels: int = 1920, pointings: int = 1,
    observatory: str = "ALMA",
) -> MousMetadata:
    """What ingest finds in an MOUS: one MS of `array`'s antennas, `spws` science spws from `frequency_hz`
    up (the first, the representative one, with `channels` channels, the others 128) beside a WVR and a
    channel-average spw, and a science target of `pointings` fields beside a calibrator. The target is
    not listed in `science_targets`, so that a run plans no imaging (ingest, calibration, export)."""
    prefix, diameter = ANTENNAS[array]
    spw_ids = [17 + 2 * index for index in range(spws)]
    windows = [
        SpectralWindow(spw_id=0, name="WVR", num_channels=4, ref_frequency_hz=183e9, centre_frequency_hz=183e9,
                       bandwidth_hz=8e9, channel_width_hz=2e9, min_frequency_hz=179e9, max_frequency_hz=187e9,
                       science=False),
        SpectralWindow(spw_id=1, name="CH_AVG", num_channels=1, ref_frequency_hz=frequency_hz,
                       centre_frequency_hz=frequency_hz, bandwidth_hz=1.875e9, channel_width_hz=1.875e9,
                       min_frequency_hz=frequency_hz, max_frequency_hz=frequency_hz + 1.875e9, science=False),
    ]
    for index, spw_id in enumerate(spw_ids):
        low = frequency_hz + index * 2e9
        count = channels if index == 0 else 128
        windows.append(SpectralWindow(
            spw_id=spw_id, num_channels=count, ref_frequency_hz=low, centre_frequency_hz=low + 0.9375e9,
            bandwidth_hz=1.875e9, channel_width_hz=1.875e9 / count, min_frequency_hz=low,
            max_frequency_hz=low + 1.875e9,
        ))
    fields = [FieldInfo(field_id=0, name="J0006-0623", ra_deg=1.6, dec_deg=-6.4,
                        intents=["CALIBRATE_BANDPASS#ON_SOURCE"], is_science_target=False, spw_ids=spw_ids)]
    fields += [
        FieldInfo(field_id=1 + index, name="NGC 253", ra_deg=11.888 + index * 0.002, dec_deg=-25.288,
                  intents=["OBSERVE_TARGET#ON_SOURCE"], is_science_target=True, spw_ids=spw_ids)
        for index in range(pointings)
    ]
    antennas = [AntennaInfo(antenna_id=index, name=f"{prefix}{41 + index}", diameter_m=diameter) for index in range(4)]
    ms = MeasurementSetInfo(
        name="uid___A002_X1_X2.ms", observatory=observatory, time_start=datetime(2024, 1, 1),
        time_end=datetime(2024, 1, 1, 1), exposure_s=3000.0, num_rows=1000, num_antennas=4, num_baselines=6,
        antennas=antennas,
        fields=fields, spectral_windows=windows, correlations=["XX", "YY"], intents=["OBSERVE_TARGET#ON_SOURCE"],
        flagged_fraction=0.1, data_columns=["DATA"], has_calibrator_intents=True,
    )
    return MousMetadata(
        measurement_sets=[ms], science_targets=[], science_spw_ids=spw_ids,
        representative_spw=RepresentativeSpw(spw_id=spw_ids[0], source="data"), calibrated=False,
    )


def dispatched_jobs(database: Database, mous_ids: Collection[str] | None = None) -> list[Job]:
    """The jobs of current MOUS runs waiting for a worker (of `mous_ids` only, when given), in dispatch order."""
    with database.transaction() as session:
        query = (
            select(Job)
            .join(Mous, (Mous.id == Job.mous_id) & (Mous.run == Job.run))
            .where(Job.state == JobState.DISPATCHED, Job.request_version_pk.is_(None))
            .order_by(Job.pk)
        )
        if mous_ids is not None:
            query = query.where(Job.mous_id.in_(list(mous_ids)))
        return list(session.scalars(query))


def play_workers(
    coordinator: Coordinator, database: Database, clock: FakeClock, *,
    only: Collection[str] | None = None, failures: Mapping[str, tuple[ErrorClass, str]] | None = None,
    seconds_per_job: float = 60.0, metadata: Mapping[str, MousMetadata] | None = None,
) -> int:
    """Start and end every dispatched job (of the MOUS in `only`, when given) until none is left: the MOUS
    named in `failures` fail their ingest with that class and message, the others complete (ingest finds
    no science target, unless `metadata` gives the MOUS's, so a run is ingest, calibration and export).
    Returns how many jobs ran."""
    failures = failures or {}
    metadata = metadata or {}
    ran = 0
    while True:
        wave = dispatched_jobs(database, only)
        if not wave:
            # Campaign jobs held back behind the queue's limit are sent by the reconcile pass.
            coordinator.reconcile()
            wave = dispatched_jobs(database, only)
        if not wave:
            break
        for job in wave:
            worker = f"{job.stage.value}:1"
            coordinator.apply_event(started(
                job.job_id, job.attempt, at=clock.advance(1), worker=worker, stage=job.stage, mous_id=job.mous_id
            ))
            at = clock.advance(seconds_per_job)
            event: JobEvent
            if job.stage == Stage.INGEST and job.mous_id in failures:
                error_class, message = failures[job.mous_id]
                event = failed(job.job_id, error_class, job.attempt, at=at, message=message, mous_id=job.mous_id)
            elif job.stage == Stage.INGEST:
                described = metadata.get(job.mous_id) or grid_metadata(0, 0)
                event = ingest_succeeded(job.job_id, job.attempt, at=at, metadata=described, mous_id=job.mous_id)
            else:
                event = stage_succeeded(job.job_id, job.stage, job.attempt, at=at, mous_id=job.mous_id)
            coordinator.apply_event(event)
            ran += 1
    return ran
