"""User-defined imaging requests: checked against the MOUS they name, estimated before they run, and kept
as versions (a re-run is a new version; a delivered one is never overwritten).

Problems with a request are collected, not raised one at a time, so that a 422 names every field that is
wrong at once. The estimate comes from what the MOUS's own processing measured: the image size and the
run time of its cube of the same spw, scaled to the channels asked for.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aperture_contracts.enums import ImagingKind, JobState, MousState, Stage
from aperture_contracts.events import ImagingResult
from aperture_contracts.imaging import ImageProduct
from aperture_contracts.metadata import MousMetadata, SpectralWindow
from aperture_contracts.requests import (
    RequestCreate,
    RequestEstimate,
    RequestList,
    RequestState,
    RequestView,
    VersionView,
)
from aperture_contracts.spectral import spectral_axis_problems
from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from aperture_coordinator.auth import Caller
from aperture_coordinator.models import ImagingRequest, Job, Mous, RequestVersion

# FITS files a cube leaves (pbcor, image, pb, residual, mask) of 4-byte pixels.
FILES_PER_IMAGE = 5
BYTES_PER_PIXEL = 4
ACTIVE_STATES = (RequestState.QUEUED, RequestState.RUNNING)
_RESULT = TypeAdapter(ImagingResult)


@dataclass(frozen=True)
class RequestProblem:
    """One thing wrong with a request: the field (dotted, as the client sent it) and what to do."""

    field: str
    message: str
    status: int = 422


class RequestRefused(Exception):
    def __init__(self, problems: list[RequestProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems

    @property
    def status(self) -> int:
        return max(problem.status for problem in self.problems)


class UnknownRequest(LookupError):
    pass


def _spws(metadata: MousMetadata) -> dict[int, SpectralWindow]:
    science = set(metadata.science_spw_ids)
    return {spw.spw_id: spw for ms in metadata.measurement_sets for spw in ms.spectral_windows
            if spw.spw_id in science}


def check_request(mous: Mous | None, body: RequestCreate) -> list[RequestProblem]:
    """Everything wrong with `body` against its MOUS (empty: it can run)."""
    if mous is None:
        return [RequestProblem("mous_id", f"no MOUS {body.mous_id}: submit it first, or check the id", 404)]
    if mous.state is not MousState.COMPLETED or mous.observation is None:
        return [RequestProblem(
            "mous_id", f"MOUS {mous.id} is {mous.state.value}, not completed: requests image an MOUS whose "
            "processing has finished; ask again when it has", 409,
        )]
    spws = _spws(MousMetadata.model_validate(mous.observation))
    problems: list[RequestProblem] = []
    for index, cube in enumerate(body.cubes):
        where = f"cubes.{index}"
        spw = spws.get(cube.spw_id)
        if spw is None:
            problems.append(RequestProblem(
                f"{where}.spw_id", f"spw {cube.spw_id} is not a science spw of {mous.id}; it has {sorted(spws)}"
            ))
            continue
        problems += [RequestProblem(f"{where}.spectral_axis.{field}", message)
                     for field, message in spectral_axis_problems(cube.spectral_axis, spw)]
    return problems


def _cube_products(session: Session, mous: Mous) -> dict[int, tuple[ImageProduct, float]]:
    """The MOUS's cubes of its current run by spw, with the imaging job's duration (s)."""
    found: dict[int, tuple[ImageProduct, float]] = {}
    jobs = session.scalars(select(Job).where(
        Job.mous_id == mous.id, Job.run == mous.run, Job.stage == Stage.IMAGING, Job.kind == ImagingKind.CUBE.value,
        Job.state == JobState.SUCCEEDED,
    ))
    for job in jobs:
        if job.result is None:
            continue
        result = _RESULT.validate_python(job.result["result"])
        for image in result.images:
            found[image.spw_ids[0]] = (image, float(job.result.get("duration_s", 0.0)))
    return found


def estimate(session: Session, mous: Mous, body: RequestCreate, max_product_bytes: int) -> RequestEstimate:
    """Sizes and run time from the MOUS's own cubes, scaled to what is asked (channels, field size)."""
    measured = _cube_products(session, mous)
    sizes: list[int] = []
    seconds = 0.0
    basis = []
    for cube in body.cubes:
        product, duration = measured.get(cube.spw_id, (None, 0.0))
        if product is None:
            continue
        pixels = product.imsize[0] * product.imsize[1]
        if body.field_size_arcsec is not None:
            side = max(1, round(body.field_size_arcsec / product.cell_arcsec))
            pixels = side * side
        sizes.append(pixels * cube.spectral_axis.nchan * BYTES_PER_PIXEL * FILES_PER_IMAGE)
        scale = cube.spectral_axis.nchan / max(product.num_channels, 1)
        scale *= pixels / max(product.imsize[0] * product.imsize[1], 1)
        seconds += duration * scale
        basis.append(f"spw {cube.spw_id}: its pipeline cube ({product.num_channels} channels, {duration:.0f} s)")
    continuum = [float(job.result.get("duration_s", 0.0)) for job in session.scalars(select(Job).where(
        Job.mous_id == mous.id, Job.run == mous.run, Job.stage == Stage.IMAGING,
        Job.kind.in_([ImagingKind.MFS.value, ImagingKind.CONT.value]), Job.state == JobState.SUCCEEDED,
    )) if job.result]
    seconds += sum(continuum)
    total = sum(sizes)
    return RequestEstimate(
        product_bytes=total, largest_cube_bytes=max(sizes, default=0), images=len(body.cubes) + len(continuum),
        run_time_s=round(seconds, 1),
        run_time_basis="; ".join(basis + [f"continuum images: {len(continuum)} measured jobs"]) if basis or continuum
        else "no measured job of this MOUS to scale from",
        within_quota=total <= max_product_bytes,
    )


def new_request_id() -> str:
    return f"req-{secrets.token_hex(6)}"


def create_request(
    session: Session, caller: Caller, body: RequestCreate, estimate_: RequestEstimate, now: datetime
) -> ImagingRequest:
    request = ImagingRequest(id=new_request_id(), owner=caller.user, mous_id=body.mous_id, created_at=now)
    request.versions = [_version(1, body, estimate_, now)]
    session.add(request)
    session.flush()
    return request


def _version(number: int, body: RequestCreate, estimate_: RequestEstimate, now: datetime) -> RequestVersion:
    return RequestVersion(
        version=number, parameters=body.model_dump(mode="json"), estimate=estimate_.model_dump(mode="json"),
        state=RequestState.QUEUED,
        reason="accepted; waiting for the request executor to image it (not deployed in this version)",
        passed_qa=None, created_at=now, updated_at=now,
    )


def add_version(
    session: Session, request: ImagingRequest, body: RequestCreate, estimate_: RequestEstimate, now: datetime
) -> RequestVersion:
    """A re-run: a new version; every earlier one, delivered or not, stays as it is."""
    version = _version(len(request.versions) + 1, body, estimate_, now)
    request.versions.append(version)
    session.flush()
    return version


def load_request(session: Session, request_id: str, caller: Caller) -> ImagingRequest:
    """The request, if the caller may see it; another user's request is as unknown as a missing one."""
    request = session.scalar(
        select(ImagingRequest).where(ImagingRequest.id == request_id).options(selectinload(ImagingRequest.versions))
    )
    if request is None or not caller.may_see(request.owner):
        raise UnknownRequest(f"no request {request_id} of yours")
    return request


def cancel_request(request: ImagingRequest, now: datetime) -> bool:
    """Cancel its unfinished versions; False when none was unfinished."""
    changed = False
    for version in request.versions:
        if not version.state.terminal:
            version.state, version.reason, version.updated_at = RequestState.CANCELLED, "cancelled by request", now
            changed = True
    return changed


def check_limits(
    session: Session, caller: Caller, rate_per_minute: int, max_active: int, now: datetime
) -> list[RequestProblem]:
    """Per-user limits: new versions per minute, and versions queued or running at once (429s)."""
    mine = select(func.count(RequestVersion.pk)).join(ImagingRequest).where(ImagingRequest.owner == caller.user)
    recent = session.scalar(mine.where(RequestVersion.created_at >= now - timedelta(minutes=1))) or 0
    active = session.scalar(mine.where(RequestVersion.state.in_(ACTIVE_STATES))) or 0
    problems = []
    if recent >= rate_per_minute:
        problems.append(RequestProblem(
            "rate", f"{recent} requests in the last minute; the limit is {rate_per_minute} a minute: wait a "
            "minute and ask again", 429,
        ))
    if active >= max_active:
        problems.append(RequestProblem(
            "quota", f"{active} of your requests are queued or running; the limit is {max_active}: wait for "
            "one to finish, or cancel one", 429,
        ))
    return problems


def view(request: ImagingRequest) -> RequestView:
    return RequestView(
        request_id=request.id, owner=request.owner, mous_id=request.mous_id, created_at=request.created_at,
        versions=[
            VersionView(
                version=v.version, state=v.state, reason=v.reason,
                parameters=RequestCreate.model_validate(v.parameters),
                estimate=RequestEstimate.model_validate(v.estimate), passed_qa=v.passed_qa,
                created_at=v.created_at, updated_at=v.updated_at,
            )
            for v in request.versions
        ],
    )


def list_requests(session: Session, caller: Caller, offset: int, limit: int) -> RequestList:
    query = select(ImagingRequest)
    if not caller.operator:
        query = query.where(ImagingRequest.owner == caller.user)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ImagingRequest.created_at.desc()).offset(offset).limit(limit)
        .options(selectinload(ImagingRequest.versions))
    )
    return RequestList(requests=[view(row) for row in rows], total=total, offset=offset, limit=limit)
