"""A small synchronous client for the coordinator's HTTP API (`/api/v1`), for the CLI and for notebooks.

    from aperture_cli.client import ApertureClient
    with ApertureClient("http://127.0.0.1:8000") as aperture:
        submission = aperture.submit(Path("uid___A002_X1_X2.ms"))
        detail = aperture.wait(submission.summary.mous_id)
        aperture.download_products(detail.mous_id, Path("products"))

Imaging requests (`/api/v1/requests`) need a bearer token; it goes to those endpoints only, never to the
MOUS endpoints or to the storage links of products:

    with ApertureClient(api_url, token="...") as aperture:
        estimate = aperture.create_request(RequestCreate(mous_id=..., cubes=[...]), dry_run=True).estimate
        request = aperture.create_request(RequestCreate(mous_id=..., cubes=[...]))
        aperture.wait_for_request(request.request_id)
        aperture.download_request(request.request_id, into=Path("products"), kinds={"pbcor", "pb"})

In a notebook, `aperture.request(request_id)` is a handle that shows itself as HTML (aperture_cli.notebook).

Every body is parsed with the contracts' pydantic models, and every failure is an `ApertureClientError`
with a message for a person (see aperture_cli.errors).
"""

import json
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Self, TypeVar, overload
from urllib.parse import quote

import httpx
from aperture_contracts.api import MousDetail, MousList, MousSummary, Problem, ProductView
from aperture_contracts.enums import MousState
from aperture_contracts.ids import canonical_mous_id, mous_key
from aperture_contracts.requests import (
    DryRun,
    ProductList,
    Progress,
    RequestCreate,
    RequestList,
    RequestProduct,
    RequestState,
    RequestView,
    VersionView,
)
from aperture_contracts.storage import ObjectRef
from pydantic import BaseModel, ValidationError

from aperture_cli.downloads import matches_stored_object, product_destination, write_verified
from aperture_cli.errors import (
    MOUS_REMEDY,
    ApertureClientError,
    ApiConnectionError,
    ApiError,
    ApiUnreachable,
    DownloadError,
    ProductsUnavailable,
    RequestWaitTimeout,
    UnexpectedResponse,
    WaitTimeout,
)
from aperture_cli.packaging import MemberCallback, UploadPackage, prepare_upload

if TYPE_CHECKING:
    from aperture_cli.notebook import RequestHandle

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
REQUESTS_PATH = "/requests"
# States after which nothing more happens without a person: the end states, and "waiting for service"
# (all the deployed stages could do is done; the rest needs a stage that is not deployed).
SETTLED_MOUS_STATES = frozenset(
    {MousState.COMPLETED, MousState.FAILED, MousState.CANCELLED, MousState.WAITING_FOR_SERVICE}
)
# States in which the MOUS did not give what was asked of it.
UNSUCCESSFUL_MOUS_STATES = frozenset({MousState.FAILED, MousState.CANCELLED})

_DOWNLOAD_CHUNK = 1024 * 1024
# While waiting, this many polls in a row may fail to connect before the wait gives up (see _poll_until).
_TOLERATED_UNREACHABLE_POLLS = 5

ModelT = TypeVar("ModelT", bound=BaseModel)
PolledT = TypeVar("PolledT")
BytesCallback = Callable[[int], None]


@dataclass(frozen=True)
class Submission:
    summary: MousSummary
    # False when the coordinator already had this MOUS (HTTP 200) and made nothing new.
    created: bool


@dataclass(frozen=True)
class DownloadedProduct:
    name: str
    path: Path
    size: int
    # True when a verified copy was already there and nothing was fetched.
    already_present: bool


class _LinkRefused(Exception):
    """Storage refused a product link (typically expired: the links are time-limited)."""


class _CountingReader:
    """A read-only file wrapper that reports the bytes read, for an upload progress bar.

    It keeps `fileno` so httpx can still tell the length (and send Content-Length, not chunks).
    """

    def __init__(self, stream: IO[bytes], on_bytes: BytesCallback) -> None:
        self._stream = stream
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._on_bytes(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def fileno(self) -> int:
        return self._stream.fileno()


class ApertureClient:
    """The coordinator's API. Use it as a context manager, or call `close()` when done.

    api_url: where the API is (no /api/v1 suffix). timeout_s: for ordinary calls; uploads and downloads
    allow `transfer_timeout_s` between bytes, since the coordinator answers an upload only once it has
    stored it. token: the bearer token of the imaging-requests endpoints (an operator hands them out).
    transport: for tests (httpx.MockTransport) or special networking.
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        transfer_timeout_s: float = 3600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token.strip() if token and token.strip() else None
        if not self.api_url.startswith(("http://", "https://")):
            raise ApertureClientError(
                f"the API URL {api_url!r} must start with http:// or https:// (e.g. {DEFAULT_API_URL})"
            )
        self._transfer_timeout = httpx.Timeout(transfer_timeout_s, connect=10.0)
        self._http = httpx.Client(
            base_url=self.api_url + API_PREFIX,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Submitting

    def submit(
        self,
        path: Path,
        *,
        mous_uid: str | None = None,
        rerun: bool = False,
        scratch_dir: Path | None = None,
        on_member: MemberCallback | None = None,
        on_bytes: BytesCallback | None = None,
    ) -> Submission:
        """Upload an MS directory (packed into a temporary tar first) or an archive file."""
        with prepare_upload(path, scratch_dir=scratch_dir, on_member=on_member) as package:
            return self.upload_package(package, mous_uid=mous_uid, rerun=rerun, on_bytes=on_bytes)

    def upload_package(
        self,
        package: UploadPackage,
        *,
        mous_uid: str | None = None,
        rerun: bool = False,
        on_bytes: BytesCallback | None = None,
    ) -> Submission:
        form: dict[str, str] = {"rerun": "true" if rerun else "false"}
        if mous_uid is not None:
            form["mous_uid"] = mous_uid
        try:
            archive = package.archive.open("rb")
        except OSError as error:
            raise ApertureClientError(f"cannot read {package.archive}: {error}") from error
        with archive:
            upload: IO[bytes] = archive
            if on_bytes is not None:
                upload = _CountingReader(archive, on_bytes)  # type: ignore[assignment]
            try:
                response = self._send(
                    "POST",
                    "/mous",
                    data=form,
                    files={"package": (package.upload_name, upload, package.content_type)},
                    timeout=self._transfer_timeout,
                )
            except OSError as error:  # reading the archive failed while it was being sent
                raise ApertureClientError(
                    f"reading {package.archive} failed during the upload: {error}"
                ) from error
        summary = self._parse(response, MousSummary)
        return Submission(summary=summary, created=response.status_code == httpx.codes.CREATED)

    # Reading and steering

    def list_mous(self, *, limit: int = 50, offset: int = 0) -> MousList:
        return self._parse(self._send("GET", "/mous", params={"limit": limit, "offset": offset}), MousList)

    def list_mous_json(self, *, limit: int = 50, offset: int = 0) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._send("GET", "/mous", params={"limit": limit, "offset": offset})
        self._parse(response, MousList)
        return response.json()

    def get_mous(self, mous_id: str) -> MousDetail:
        return self._parse(self._send("GET", _mous_path(mous_id)), MousDetail)

    def get_mous_json(self, mous_id: str) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._send("GET", _mous_path(mous_id))
        self._parse(response, MousDetail)
        return response.json()

    def cancel_mous(self, mous_id: str) -> MousSummary:
        return self._parse(self._send("POST", _mous_path(mous_id) + "/cancel"), MousSummary)

    def wait(
        self,
        mous_id: str,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = 2.0,
        on_update: Callable[[MousDetail], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> MousDetail:
        """Poll the MOUS until it settles (see SETTLED_MOUS_STATES); raises WaitTimeout past timeout_s.

        on_update sees every detail polled (for a progress display).
        """

        def poll() -> MousDetail:
            detail = self.get_mous(mous_id)
            if on_update is not None:
                on_update(detail)
            return detail

        return _poll_until(
            poll,
            lambda detail: detail.state in SETTLED_MOUS_STATES,
            lambda detail: WaitTimeout(detail, timeout_s or 0.0),
            timeout_s=timeout_s,
            poll_s=poll_interval_s,
            sleep=sleep,
            clock=clock,
        )

    # Products

    def download_products(
        self,
        mous_id: str,
        directory: Path,
        *,
        on_product: Callable[[ProductView], None] | None = None,
        on_bytes: BytesCallback | None = None,
        on_done: Callable[[DownloadedProduct], None] | None = None,
    ) -> list[DownloadedProduct]:
        """Fetch every product of the MOUS into `directory`, verifying each one's SHA-256.

        on_product is called when a product starts, on_bytes per chunk received, on_done when it is in
        place (so a caller can report each file even if a later one fails).

        Files already there with the right checksum are kept as they are. Links are time-limited: a
        refused link is asked for again once (a fresh MousDetail) before the download counts as failed.
        """
        products = self.get_mous(mous_id).products
        wanted = [
            _Wanted(product.name, product.download_url, product.object, product_destination(directory, product.name))
            for product in products
        ]
        _check_distinct(wanted, f"the API lists several products of {mous_id} under the same name")
        return self._download_all(
            wanted,
            lambda: {product.name: product.download_url for product in self.get_mous(mous_id).products},
            owner=mous_id,
            remedy=MOUS_REMEDY,
            on_start=None if on_product is None else lambda index: on_product(products[index]),
            on_bytes=on_bytes,
            on_done=on_done,
        )

    def _download_all(
        self,
        wanted: list["_Wanted"],
        fresh_links: Callable[[], dict[str, str | None]],
        *,
        owner: str,
        remedy: str,
        on_start: Callable[[int], None] | None,
        on_bytes: BytesCallback | None,
        on_done: Callable[[DownloadedProduct], None] | None,
    ) -> list[DownloadedProduct]:
        """Fetch each file not already there, verified; a refused link is asked for again once."""
        downloaded: list[DownloadedProduct] = []
        for index, item in enumerate(wanted):
            if on_start is not None:
                on_start(index)
            present = matches_stored_object(item.target, item.expected)
            if not present:
                try:
                    self._fetch_verified(item.url, item, on_bytes, remedy)
                except _LinkRefused:
                    links = fresh_links()
                    if item.name not in links:
                        raise DownloadError(
                            f"{item.name} is no longer among the products of {owner} (was it re-run?)"
                        ) from None
                    try:
                        self._fetch_verified(links[item.name], item, on_bytes, remedy)
                    except _LinkRefused as refused:
                        raise DownloadError(
                            f"{item.name}: storage refused a fresh link too: {refused}"
                        ) from None
            result = DownloadedProduct(item.name, item.target, item.expected.size, already_present=present)
            downloaded.append(result)
            if on_done is not None:
                on_done(result)
        return downloaded

    def _fetch_verified(
        self, link: str | None, item: "_Wanted", on_bytes: BytesCallback | None, remedy: str
    ) -> None:
        if not link:
            raise _LinkRefused("the API gave no download link")
        # Links are normally absolute (a presigned storage URL); a relative one is on the API's host.
        url = httpx.URL(self.api_url + "/").join(link)
        try:
            with self._http.stream(
                "GET", url, follow_redirects=True, timeout=self._transfer_timeout
            ) as response:
                if response.status_code in (httpx.codes.FORBIDDEN, httpx.codes.UNAUTHORIZED):
                    raise _LinkRefused(f"HTTP {response.status_code}")
                if response.status_code != httpx.codes.OK:
                    response.read()
                    raise DownloadError(
                        f"{item.name}: the download answered HTTP {response.status_code}: "
                        f"{_short(response.text)}"
                    )
                write_verified(
                    response.iter_bytes(_DOWNLOAD_CHUNK), item.target, item.expected, item.name, on_bytes, remedy
                )
        except httpx.TransportError as error:
            host = url.host
            raise DownloadError(
                f"{item.name}: the download from {host} broke off ({type(error).__name__}: {error}); "
                "run the download again (finished files are kept)"
            ) from error
        except OSError as error:
            raise DownloadError(f"{item.name}: cannot write {item.target}: {error}") from error

    # Imaging requests

    @overload
    def create_request(self, body: RequestCreate, *, dry_run: Literal[False] = False) -> RequestView: ...

    @overload
    def create_request(self, body: RequestCreate, *, dry_run: Literal[True]) -> DryRun: ...

    @overload
    def create_request(self, body: RequestCreate, *, dry_run: bool) -> RequestView | DryRun: ...

    def create_request(self, body: RequestCreate, *, dry_run: bool = False) -> RequestView | DryRun:
        """Ask for an imaging request; with dry_run, only check it and estimate it (nothing is stored)."""
        response = self._send(
            "POST",
            REQUESTS_PATH,
            params={"dry_run": "true"} if dry_run else None,
            json=body.model_dump(mode="json"),
            headers=self._bearer(),
        )
        return self._parse(response, DryRun) if dry_run else self._parse(response, RequestView)

    def list_requests(self, *, offset: int = 0, limit: int = 50) -> RequestList:
        """The caller's requests, newest first (an operator's token: everyone's)."""
        return self._parse(self._list_requests_response(offset, limit), RequestList)

    def list_requests_json(self, *, offset: int = 0, limit: int = 50) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._list_requests_response(offset, limit)
        self._parse(response, RequestList)
        return response.json()

    def get_request(self, request_id: str) -> RequestView:
        return self._parse(self._send("GET", _request_path(request_id), headers=self._bearer()), RequestView)

    def get_request_json(self, request_id: str) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._send("GET", _request_path(request_id), headers=self._bearer())
        self._parse(response, RequestView)
        return response.json()

    def rerun_request(self, request_id: str, body: RequestCreate | None = None) -> RequestView:
        """A new version of the request: as its latest version asked, or with `body`'s parameters."""
        response = self._send(
            "POST",
            _request_path(request_id) + "/versions",
            json=None if body is None else body.model_dump(mode="json"),
            headers=self._bearer(),
        )
        return self._parse(response, RequestView)

    def cancel_request(self, request_id: str) -> RequestView:
        """Cancel the request's unfinished versions; finished ones stay as they are."""
        response = self._send("POST", _request_path(request_id) + "/cancel", headers=self._bearer())
        return self._parse(response, RequestView)

    def request(self, request_id: str, version: int | None = None) -> "RequestHandle":
        """A request to follow in a notebook (shown as HTML; see aperture_cli.notebook)."""
        from aperture_cli.notebook import RequestHandle  # the notebook module builds on this one

        return RequestHandle(self, request_id, version)

    def wait_for_request(
        self,
        request_id: str,
        *,
        version: int | None = None,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_progress: Callable[[VersionView], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> RequestView:
        """Poll the request until `version` (default: the latest when the wait starts) has ended.

        on_progress sees that version on every poll (for a progress display). Raises RequestWaitTimeout
        past timeout_s; the version keeps running on the server.
        """
        chosen = version

        def poll() -> RequestView:
            nonlocal chosen
            request = self.get_request(request_id)
            # Fixed at the first poll, so that a re-run started meanwhile does not change what is awaited.
            chosen = chosen if chosen is not None else request.versions[-1].version
            if on_progress is not None:
                on_progress(version_of(request, chosen))
            return request

        return _poll_until(
            poll,
            lambda request: version_of(request, chosen).state.terminal,
            lambda request: RequestWaitTimeout(request_id, version_of(request, chosen), timeout_s or 0.0),
            timeout_s=timeout_s,
            poll_s=poll_s,
            sleep=sleep,
            clock=clock,
        )

    def request_products(self, request_id: str, version: int | None = None) -> ProductList:
        """The files a version (default: the latest) delivered, with time-limited links.

        Raises ProductsUnavailable, saying why, while the version runs or when it was cancelled.
        """
        return self._parse(self._products_response(request_id, version), ProductList)

    def request_products_json(self, request_id: str, version: int | None = None) -> Any:
        """The API's body as it came (checked against the contract first)."""
        response = self._products_response(request_id, version)
        self._parse(response, ProductList)
        return response.json()

    def download_request(
        self,
        request_id: str,
        version: int | None = None,
        *,
        into: Path,
        kinds: Collection[str] | None = None,
    ) -> list[Path]:
        """Fetch a version's products (only those of `kinds`, e.g. {"pbcor", "pb"}, if given) into
        `into/<request_id>/v<version>/`, each verified by size and SHA-256; the files' paths.

        Files already there with the right checksum are not fetched again.
        """
        listing = self.request_products(request_id, version)
        return [result.path for result in self.download_listing(listing, into, kinds=kinds)]

    def download_listing(
        self,
        listing: ProductList,
        into: Path,
        *,
        kinds: Collection[str] | None = None,
        on_product: Callable[[RequestProduct], None] | None = None,
        on_bytes: BytesCallback | None = None,
        on_done: Callable[[DownloadedProduct], None] | None = None,
    ) -> list[DownloadedProduct]:
        """download_request's work on a listing already read (the CLI reads it first to note a version
        that failed or did not pass QA); callbacks as in download_products."""
        chosen = _products_of_kinds(listing, kinds)
        folder = request_folder(into, listing.request_id, listing.version)
        wanted = [
            _Wanted(product.name, product.url, _stored_object(product), product_destination(folder, product.name))
            for product in chosen
        ]
        owner = f"version {listing.version} of {listing.request_id}"
        _check_distinct(wanted, f"the API lists several products of {owner} under the same name")

        def fresh_links() -> dict[str, str | None]:
            fresh = self.request_products(listing.request_id, listing.version)
            return {product.name: product.url for product in fresh.products}

        return self._download_all(
            wanted,
            fresh_links,
            owner=owner,
            remedy=f"{owner} should be run again (`aperture request rerun {listing.request_id}`)",
            on_start=None if on_product is None else lambda index: on_product(chosen[index]),
            on_bytes=on_bytes,
            on_done=on_done,
        )

    def _products_response(self, request_id: str, version: int | None) -> httpx.Response:
        number = version if version is not None else self.get_request(request_id).versions[-1].version
        try:
            return self._send(
                "GET", f"{_request_path(request_id)}/versions/{number}/products", headers=self._bearer()
            )
        except ApiError as error:
            if error.status_code != httpx.codes.CONFLICT:
                raise
            raise self._products_unavailable(request_id, number, error) from None

    def _products_unavailable(self, request_id: str, number: int, refusal: ApiError) -> ProductsUnavailable:
        """Why a version has no products (a 409), in the CLI's words when the version can be read."""
        said = next(
            (str(item["message"]) for item in refusal.field_errors if "message" in item), refusal.detail
        )
        try:
            current = version_of(self.get_request(request_id), number)
        except ApertureClientError:
            return ProductsUnavailable(f"{request_id} has no products to offer: {said}", None)
        jobs = current.progress
        if current.state is RequestState.CANCELLED:
            message = (
                f"version {number} of {request_id} was cancelled ({current.reason}): it has no products, its "
                f"outputs are removed. `aperture request rerun {request_id}` runs it again"
            )
        elif not current.state.terminal:
            message = (
                f"version {number} of {request_id} is {current.state.value} ({ended_jobs(jobs)} of {jobs.total} "
                f"jobs done): its products can be fetched once it has ended; `aperture request status "
                f"{request_id} --wait` waits for that"
            )
        else:  # it ended between the two reads: the API's own words
            message = f"{request_id} had no products to offer yet: {said}; ask again"
        return ProductsUnavailable(message, current)

    def _list_requests_response(self, offset: int, limit: int) -> httpx.Response:
        return self._send(
            "GET", REQUESTS_PATH, params={"offset": offset, "limit": limit}, headers=self._bearer()
        )

    def _bearer(self) -> dict[str, str]:
        # Without a token nothing is sent: the API's 401 says what it wants better than a guess here.
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # HTTP plumbing

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ApiUnreachable(self.api_url, str(error) or type(error).__name__) from error
        except httpx.TimeoutException as error:
            raise ApiConnectionError(
                f"the Aperture API at {self.api_url} did not answer {method} {path} in time "
                f"({type(error).__name__}); it may be overloaded: try again"
            ) from error
        except httpx.TransportError as error:
            raise ApiConnectionError(
                f"the exchange with the Aperture API at {self.api_url} broke off during {method} {path}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if response.is_error:
            raise _api_error(method, API_PREFIX + path, response)
        return response

    def _parse(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as error:
            raise UnexpectedResponse(
                f"the API at {self.api_url} answered {response.request.method} {response.request.url.path} "
                f"with a body that is not a {model.__name__} ({error.error_count()} problem(s), first: "
                f"{_first_problem(error)}); are the CLI and the coordinator the same version?"
            ) from error


def _request_path(request_id: str) -> str:
    # Quoted whole, so that an id typed with a slash cannot reach another endpoint.
    return f"{REQUESTS_PATH}/{quote(request_id.strip(), safe='')}"


def version_of(request: RequestView, number: int | None) -> VersionView:
    """A request's version by number (None: the latest); an error naming the versions there are."""
    if number is None:
        return request.versions[-1]
    for version in request.versions:
        if version.version == number:
            return version
    raise ApertureClientError(
        f"{request.request_id} has versions 1 to {len(request.versions)}; there is no version {number}"
    )


def ended_jobs(progress: Progress) -> int:
    return progress.succeeded + progress.failed + progress.cancelled


def request_folder(into: Path, request_id: str, version: int) -> Path:
    """Where a version's products go: into/<request_id>/v<version>; an id that is not one safe folder
    name is refused (it comes from the API, but it names a place on the user's disk)."""
    if not request_id or request_id in (".", "..") or "/" in request_id or "\\" in request_id:
        raise DownloadError(f"the API named the request {request_id!r}, which is not a safe folder name")
    return into / request_id / f"v{version}"


def _products_of_kinds(listing: ProductList, kinds: Collection[str] | None) -> list[RequestProduct]:
    if not kinds:
        return listing.products
    available = {product.kind for product in listing.products}
    unknown = sorted(set(kinds) - available)
    if unknown:
        raise DownloadError(
            f"version {listing.version} of {listing.request_id} has no products of kind {', '.join(unknown)}; "
            f"its kinds are: {', '.join(sorted(available)) or 'none (it has no products)'}"
        )
    return [product for product in listing.products if product.kind in kinds]


def _stored_object(product: RequestProduct) -> ObjectRef:
    """What a request product's bytes must be, in the form the verified download checks."""
    try:
        return ObjectRef(
            key=product.name, sha256=product.sha256, size=product.size, content_type=product.content_type
        )
    except ValidationError as error:
        raise DownloadError(
            f"the API described the product {product.name!r} in a way that cannot be checked "
            f"({_first_problem(error)}); not downloading it"
        ) from error


@dataclass(frozen=True)
class _Wanted:
    """One file to fetch: its product's name, its link, what its bytes must be, and where it goes."""

    name: str
    url: str | None
    expected: ObjectRef
    target: Path


def _check_distinct(wanted: list[_Wanted], problem: str) -> None:
    targets = [item.target for item in wanted]
    if len(set(targets)) != len(targets):
        raise DownloadError(f"{problem}; not downloading (report this: product names must be unique)")


def _poll_until(
    read: Callable[[], PolledT],
    settled: Callable[[PolledT], bool],
    timed_out: Callable[[PolledT], ApertureClientError],
    *,
    timeout_s: float | None,
    poll_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> PolledT:
    """Read until `settled`; past timeout_s, raise `timed_out(the last thing read)`.

    A coordinator restart (`make up` again, a redeploy) should not end a wait: after a first good read,
    a few polls in a row may fail to connect before the wait gives up.
    """
    deadline = None if timeout_s is None else clock() + timeout_s
    failed_polls = 0
    seen: list[PolledT] = []  # the last thing read, once there is one
    while True:
        try:
            current = read()
        except (ApiUnreachable, ApiConnectionError):
            failed_polls += 1
            if failed_polls > _TOLERATED_UNREACHABLE_POLLS or not seen:
                raise
        else:
            failed_polls = 0
            seen[:] = [current]
            if settled(current):
                return current
        # seen is not empty here: a failing first read raised above.
        if deadline is not None and clock() >= deadline:
            raise timed_out(seen[0])
        pause = poll_s if deadline is None else min(poll_s, deadline - clock())
        sleep(max(pause, 0.0))


def _mous_path(mous_id: str) -> str:
    """/mous/<id> with the id in its file form (uid___A_B_C), whichever form the user typed."""
    return "/mous/" + quote(mous_key(canonical_mous_id(mous_id.strip())), safe="")


def _api_error(method: str, path: str, response: httpx.Response) -> ApiError:
    """The API's Problem body, or the best reading of a body that is not one (a proxy's page, FastAPI's
    own validation errors, whose `detail` is a list)."""
    try:
        problem = Problem.model_validate_json(response.content)
        return ApiError(method, path, response.status_code, problem.detail, problem.errors)
    except ValidationError:
        pass
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        errors = [item for item in body["detail"] if isinstance(item, dict)]
        return ApiError(method, path, response.status_code, "the request was not valid", errors)
    reason = response.reason_phrase or "error"
    text = _short(response.text) if response.content else "(empty body)"
    return ApiError(method, path, response.status_code, f"{reason}: {text}", [])


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(body)"
    return f"{where}: {first['msg']}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iter_field_errors(errors: list[dict[str, object]]) -> Iterator[tuple[str, str]]:
    """Field errors as (where, what) pairs, for Problem.errors and FastAPI's validation items alike."""
    for item in errors:
        location = item.get("loc", item.get("field", item.get("location")))
        if isinstance(location, list | tuple):
            where = ".".join(str(part) for part in location)
        else:
            where = str(location) if location is not None else ""
        message = item.get("msg", item.get("message", item.get("detail")))
        if message is None:
            message = ", ".join(
                f"{key}={value}" for key, value in item.items() if key not in {"loc", "field"}
            )
        yield where, str(message)
