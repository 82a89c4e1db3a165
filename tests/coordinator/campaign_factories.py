"""Builders for the campaign tests (coordinator and CLI): an archive of small packages in an in-memory store
that can list a prefix, and a driver that plays the workers of the MOUS a campaign submitted."""

from collections.abc import Collection, Iterator, Mapping

from aperture_contracts.enums import ErrorClass, JobState, Stage
from aperture_contracts.events import JobEvent
from aperture_contracts.ids import mous_key
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
    seconds_per_job: float = 60.0,
) -> int:
    """Start and end every dispatched job (of the MOUS in `only`, when given) until none is left: the MOUS
    named in `failures` fail their ingest with that class and message, the others complete (ingest finds
    no science target, so a run is ingest, calibration and export). Returns how many jobs ran."""
    failures = failures or {}
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
                event = ingest_succeeded(job.job_id, job.attempt, at=at, metadata=grid_metadata(0, 0),
                                         mous_id=job.mous_id)
            else:
                event = stage_succeeded(job.job_id, job.stage, job.attempt, at=at, mous_id=job.mous_id)
            coordinator.apply_event(event)
            ran += 1
    return ran
