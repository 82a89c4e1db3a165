"""User-defined imaging requests: checked against the MOUS they name, estimated before they run, and kept
as versions (a re-run is a new version; a delivered one is never overwritten).

Problems with a request are collected, not raised one at a time, so that a 422 names every field that is
wrong at once. The estimate comes from what the MOUS's own processing measured: the image size and the
run time of its cube of the same spw, scaled to the channels asked for.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aperture_contracts.enums import ImagingKind, JobState, MousState, Recipe, Stage
from aperture_contracts.imaging import ImageProduct, ProductSizeLimits
from aperture_contracts.metadata import MousMetadata, SpectralWindow
from aperture_contracts.products import PreviewsResult
from aperture_contracts.requests import (
    ImageCheck,
    ProductList,
    RequestCreate,
    RequestEstimate,
    RequestList,
    RequestProduct,
    RequestState,
    RequestView,
    VersionView,
)
from aperture_contracts.spectral import spectral_axis_problems
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from aperture_coordinator.auth import Caller
from aperture_coordinator.models import ImagingRequest, Job, Mous, RequestVersion
from aperture_coordinator.request_execution import RunImages, beam_size_arcsec, job_images, job_view, progress
from aperture_coordinator.request_planner import request_products_prefix

# FITS files a cube leaves (pbcor, image, pb, residual, mask) of 4-byte pixels.
FILES_PER_IMAGE = 5
BYTES_PER_PIXEL = 4
ACTIVE_STATES = (RequestState.QUEUED, RequestState.RUNNING)
CONTINUUM_KINDS = (ImagingKind.MFS, ImagingKind.CONT)
# What a request's view shows: every version with its jobs.
WITH_VERSIONS = selectinload(ImagingRequest.versions).selectinload(RequestVersion.jobs)


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
    if body.cubes and mous.recipe is Recipe.QUICKLOOK:
        return [RequestProblem(
            "cubes", f"MOUS {mous.id} was processed with the quick-look recipe (continuum only), so it has no "
            "continuum-subtracted data to make cubes from: ask for continuum images only, or ask an operator to "
            "process it in full", 409,
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


def run_images(session: Session, mous: Mous) -> tuple[RunImages, dict[tuple[ImagingKind, int | None], float]]:
    """The images of the MOUS's current run by kind and spw (None: aggregate continuum), and the duration (s)
    of the job that made each (a cube imaged in chunks: its joining job's, the chunks are not counted)."""
    images: RunImages = {}
    durations: dict[tuple[ImagingKind, int | None], float] = {}
    jobs = session.scalars(select(Job).where(
        Job.mous_id == mous.id, Job.run == mous.run, Job.request_version_pk.is_(None), Job.stage == Stage.IMAGING,
        Job.state == JobState.SUCCEEDED,
    ))
    for job in jobs:
        for image in job_images(job):
            key = (image.kind, image.spw_ids[0] if image.kind != ImagingKind.CONT else None)
            images[key] = image
            durations[key] = float((job.result or {}).get("duration_s", 0.0))
    return images, durations


def resolution_problems(body: RequestCreate, images: RunImages) -> list[RequestProblem]:
    """A target resolution finer than the data's beam cannot be had by tapering (a taper only widens)."""
    if body.target_resolution_arcsec is None:
        return []
    widths = {spw: beam_size_arcsec(image) for (kind, spw), image in images.items() if kind == ImagingKind.MFS}
    too_fine = {spw: width for spw, width in widths.items() if body.target_resolution_arcsec < width / 1.1}
    if not too_fine:
        return []
    spw, width = max(too_fine.items(), key=lambda item: item[1])
    return [RequestProblem(
        "target_resolution_arcsec", f"{body.target_resolution_arcsec:g} arcsec is finer than the data's own "
        f"resolution ({width:.3g} arcsec in spw {spw}): a uv taper can only widen the beam; ask for "
        f"{max(widths.values()):.3g} arcsec or more, or leave it unset for the data's own resolution",
    )]


def estimate(
    session: Session, mous: Mous, body: RequestCreate, max_product_bytes: int,
    limits: ProductSizeLimits | None = None,
) -> RequestEstimate:
    """Sizes and run time from the MOUS's own images, scaled to what is asked (channels, field size), and
    what the imaging's size cascade would change where a cube is over its limit."""
    limits = limits or ProductSizeLimits()
    images, durations = run_images(session, mous)
    mitigation: list[str] = []
    sizes: list[int] = []
    seconds = 0.0
    basis = []
    for cube in body.cubes:
        product = images.get((ImagingKind.CUBE, cube.spw_id))
        if product is None:
            continue
        duration = durations[(ImagingKind.CUBE, cube.spw_id)]
        pixels = product.imsize[0] * product.imsize[1]
        if body.field_size_arcsec is not None:
            side = max(1, round(body.field_size_arcsec / product.cell_arcsec))
            pixels = side * side
        sizes.append(pixels * cube.spectral_axis.nchan * BYTES_PER_PIXEL * FILES_PER_IMAGE)
        mitigation += cube_mitigation(cube.spw_id, pixels * cube.spectral_axis.nchan * BYTES_PER_PIXEL, body, limits)
        scale = cube.spectral_axis.nchan / max(product.num_channels, 1)
        scale *= pixels / max(product.imsize[0] * product.imsize[1], 1)
        seconds += duration * scale
        basis.append(f"spw {cube.spw_id}: its pipeline cube ({product.num_channels} channels, {duration:.0f} s)")
    continuum = [duration for (kind, _spw), duration in durations.items() if kind in CONTINUUM_KINDS]
    seconds += sum(continuum)
    total = sum(sizes)
    return RequestEstimate(
        product_bytes=total, largest_cube_bytes=max(sizes, default=0), images=len(body.cubes) + len(continuum),
        run_time_s=round(seconds, 1),
        run_time_basis="; ".join(basis + [f"continuum images: {len(continuum)} measured jobs"]) if basis or continuum
        else "no measured job of this MOUS to scale from",
        mitigation=mitigation, within_quota=total <= max_product_bytes,
    )


def cube_mitigation(spw: int, image_bytes: int, body: RequestCreate, limits: ProductSizeLimits) -> list[str]:
    """What the imaging's size cascade (aperture_imaging.product_size) would do to a cube of `image_bytes`:
    a requested spectral axis is never binned, so the field shrinks (unless the request fixed it) and then
    the pixels coarsen; above the hard limit even that may not be enough."""
    if image_bytes <= limits.max_cube_bytes:
        return []
    limit = limits.max_cube_bytes / 1e9
    size = f"spw {spw}: the cube would be {image_bytes / 1e9:.1f} GB, over the {limit:.0f} GB limit"
    if body.field_size_arcsec is not None:
        steps = "its field is fixed by field_size_arcsec, so only its pixels would be coarsened (3 across the beam)"
    else:
        steps = ("its field would be shrunk (to the primary beam's 0.7 level at most) and then its pixels coarsened "
                 "(3 across the beam), as the ALMA pipeline does; its channels are kept as asked")
    hard = ""
    if image_bytes > limits.max_cube_hard_bytes:
        hard = (f"; it is also over the hard limit of {limits.max_cube_hard_bytes / 1e9:.0f} GB, and the job fails if "
                "the cascade cannot bring it under: ask for fewer channels or a smaller field")
    return [f"{size}: {steps}{hard}"]


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
        state=RequestState.QUEUED, reason="accepted; its jobs are being planned",
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
        select(ImagingRequest).where(ImagingRequest.id == request_id).options(WITH_VERSIONS)
    )
    if request is None or not caller.may_see(request.owner):
        raise UnknownRequest(f"no request {request_id} of yours")
    return request


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
                progress=progress(v.jobs), jobs=[job_view(job) for job in v.jobs],
                qa=[ImageCheck.model_validate(check) for check in v.qa or []],
                created_at=v.created_at, updated_at=v.updated_at, started_at=v.started_at, ended_at=v.ended_at,
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
        .options(WITH_VERSIONS)
    )
    return RequestList(requests=[view(row) for row in rows], total=total, offset=offset, limit=limit)


@dataclass(frozen=True)
class VersionProducts:
    """A version's delivered files before their links are signed (signing needs the object store)."""

    request_id: str
    version: RequestVersion
    files: list[tuple[RequestProduct, str]]  # the product without its link, and its object key

    def signed(self, sign: Callable[[str, timedelta], str], ttl: timedelta, now: datetime) -> ProductList:
        return ProductList(
            request_id=self.request_id, version=self.version.version, state=self.version.state,
            passed_qa=self.version.passed_qa,
            products=[product.model_copy(update={"url": sign(key, ttl)}) for product, key in self.files],
            links_expire_at=now + ttl,
        )


def version_products(session: Session, request: ImagingRequest, number: int) -> VersionProducts:
    """The files the version's succeeded jobs stored under its folder. A version that has not ended, or
    was cancelled, has none to offer (409): nothing half-made is listed as a product."""
    version = next((v for v in request.versions if v.version == number), None)
    if version is None:
        raise RequestRefused([RequestProblem(
            "version", f"request {request.id} has versions 1 to {len(request.versions)}, not {number}", 404
        )])
    if version.state == RequestState.CANCELLED:
        raise RequestRefused([RequestProblem(
            "version", f"version {number} was cancelled ({version.reason}); its outputs are removed: run the "
            "request again for products", 409,
        )])
    if not version.state.terminal:
        done = progress(version.jobs)
        raise RequestRefused([RequestProblem(
            "version", f"version {number} is {version.state.value} ({done.succeeded} of {done.total} jobs done); "
            "its products are listed once it has ended", 409,
        )])
    prefix = request_products_prefix(request.mous_id, request.id, number)
    files: list[tuple[RequestProduct, str]] = []
    for job in version.jobs:
        if job.state != JobState.SUCCEEDED or not job.result:
            continue
        for key, kind, spw_ids in _delivered_files(job):
            output = next((ref for ref in job.result.get("outputs", []) if ref["key"] == key), None)
            if output is None or not key.startswith(prefix):
                continue
            files.append((RequestProduct(
                name=key.removeprefix(prefix), kind=kind, image_kind=ImagingKind(job.kind), target=job.target,
                spw_ids=spw_ids, size=output["size"], sha256=output["sha256"], content_type=output["content_type"],
                url="",
            ), key))
    return VersionProducts(request.id, version, sorted(files, key=lambda item: item[0].name))


def _delivered_files(job: Job) -> list[tuple[str, str, list[int]]]:
    """(key, kind, spws) of what a succeeded job delivers: an imaging job's FITS files, a previews job's
    pictures and moment maps (a HiPS is not delivered: it is for the archive's sky viewer)."""
    assert job.result is not None
    if job.stage == Stage.IMAGING:
        return [(key, kind, image.spw_ids) for image in job_images(job) for key, kind in image_files(image)]
    if job.stage == Stage.PREVIEWS:
        previews = PreviewsResult.model_validate(job.result["result"])
        return [(item.file.key, item.role.value, previews.spw_ids) for item in previews.files]
    return []


def image_files(image: ImageProduct) -> list[tuple[str, str]]:
    """(key, kind) of each FITS file of an image: pbcor, image, pb, then residual, mask, ... by name."""
    named = [(image.pbcor.key, "pbcor"), (image.image.key, "image"), (image.pb.key, "pb")]
    for extra in image.extra:
        stem = extra.key.rsplit("/", 1)[-1].removesuffix(".fits").removesuffix(".fits.gz")
        named.append((extra.key, stem.rsplit(".", 1)[-1]))
    return named
