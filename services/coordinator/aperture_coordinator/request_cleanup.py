"""Removing what a cancelled request version left in the object store.

Cancelling stops the version's jobs at once, but a worker can still be finishing an upload when its CASA
work is stopped, and it reports afterwards. So the outputs are deleted a grace period after the cancel, and
again a grace period after any late report (state.py clears `outputs_removed_at` when one comes). The
version's folder and its jobs' work folders are deleted, with the coordinator's records of their objects.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aperture_contracts.requests import RequestState
from sqlalchemy import delete, or_, select, update

from aperture_coordinator.db import Database
from aperture_coordinator.job_messages import work_prefix
from aperture_coordinator.models import ImagingRequest, Job, RequestVersion, StoredObject
from aperture_coordinator.request_planner import request_products_prefix

log = logging.getLogger(__name__)


class PrefixDeleter(Protocol):
    def delete_prefix(self, prefix: str) -> int: ...


@dataclass(frozen=True)
class _Leftovers:
    version_pk: int
    seen_at: datetime  # the version's updated_at when it was read: a late report since then moves it
    label: str
    prefixes: list[str]


def remove_cancelled_outputs(database: Database, store: PrefixDeleter, grace: timedelta, now: datetime) -> int:
    """Delete the outputs of versions cancelled (or reported on) at least `grace` ago; returns how many
    versions were cleaned. The deleting happens outside any transaction (it can take a while)."""
    with database.transaction() as session:
        rows = session.execute(
            select(RequestVersion, ImagingRequest.mous_id)
            .join(ImagingRequest)
            .where(
                RequestVersion.state == RequestState.CANCELLED, RequestVersion.outputs_removed_at.is_(None),
                RequestVersion.updated_at <= now - grace,
            )
            .limit(50)
        ).all()
        leftovers = []
        for version, mous_id in rows:
            job_ids = session.scalars(select(Job.job_id).where(Job.request_version_pk == version.pk))
            prefixes = [request_products_prefix(mous_id, version.request_id, version.version)]
            prefixes += [work_prefix(mous_id, job_id) for job_id in job_ids]
            label = f"request {version.request_id} version {version.version}"
            leftovers.append(_Leftovers(version.pk, version.updated_at, label, prefixes))
    for leftover in leftovers:
        deleted = sum(store.delete_prefix(prefix) for prefix in leftover.prefixes)
        with database.transaction() as session:
            session.execute(delete(StoredObject).where(
                or_(*(StoredObject.key.startswith(prefix, autoescape=True) for prefix in leftover.prefixes))
            ))
            session.execute(
                update(RequestVersion)
                .where(RequestVersion.pk == leftover.version_pk, RequestVersion.updated_at == leftover.seen_at)
                .values(outputs_removed_at=now)
            )
        log.info("%s was cancelled: %d objects of it deleted", leftover.label, deleted)
    return len(leftovers)


async def clean_requests_forever(
    database: Database, store: PrefixDeleter, grace_s: float, interval_s: float, clock: Callable[[], datetime]
) -> None:
    while True:
        try:
            await asyncio.to_thread(remove_cancelled_outputs, database, store, timedelta(seconds=grace_s), clock())
        except Exception:  # the database or the store may be restarting: the next pass tries again
            log.exception("removing cancelled requests' outputs failed")
        await asyncio.sleep(interval_s)
