"""The failures a user of the client can expect, each with a message that says what is wrong and what to do.

The command line prints these messages and exits with a code per kind; Python callers catch
`ApertureClientError` (or a subclass) instead of httpx's and pydantic's own exceptions.
"""

from aperture_contracts.api import MousDetail
from aperture_contracts.requests import VersionView

# What to do about a product whose bytes are damaged, for an MOUS's products (the default) and a request's.
MOUS_REMEDY = "the MOUS should be re-run (`aperture submit --rerun`)"


class ApertureClientError(Exception):
    """An expected failure: its message is meant for a person, no traceback needed."""


class ApiUnreachable(ApertureClientError):
    """No connection to the API could be made (nothing listens, wrong host, DNS, refused)."""

    def __init__(self, api_url: str, cause: str) -> None:
        super().__init__(
            f"cannot reach the Aperture API at {api_url}: is it running? `make up` starts it "
            f"(or point --api / APERTURE_API_URL at it). Cause: {cause}"
        )
        self.api_url = api_url


class ApiConnectionError(ApertureClientError):
    """The connection was made but the exchange broke off (timeout, connection reset, bad HTTP)."""


class ApiError(ApertureClientError):
    """The API answered with an error status; `detail` and `field_errors` are what it said."""

    def __init__(
        self,
        method: str,
        path: str,
        status_code: int,
        detail: str,
        field_errors: list[dict[str, object]],
    ) -> None:
        super().__init__(f"{method} {path} failed with HTTP {status_code}: {detail}")
        self.method = method
        self.path = path
        self.status_code = status_code
        self.detail = detail
        self.field_errors = field_errors


class UnexpectedResponse(ApertureClientError):
    """A success status whose body is not what the contract says: the CLI and the API disagree."""


class PackagingError(ApertureClientError):
    """What the user pointed at cannot be uploaded as an MS package."""


class DownloadError(ApertureClientError):
    """A product could not be fetched or stored."""


class ChecksumMismatch(DownloadError):
    """A downloaded product's bytes are not the ones the coordinator recorded; the file is not kept."""

    def __init__(
        self, product_name: str, expected_sha256: str, actual_sha256: str, remedy: str = MOUS_REMEDY
    ) -> None:
        super().__init__(
            f"{product_name}: the downloaded bytes have SHA-256 {actual_sha256}, but the stored product "
            f"has {expected_sha256}; the file was not kept. Download it again; if it fails again, the "
            f"stored object is damaged and {remedy}."
        )
        self.product_name = product_name
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256


class SizeMismatch(DownloadError):
    """A download brought more or fewer bytes than the product has; the file is not kept."""

    def __init__(self, product_name: str, expected_size: int, received: int, remedy: str = MOUS_REMEDY) -> None:
        amount = f"more than {expected_size}" if received > expected_size else f"{received}"
        super().__init__(
            f"{product_name}: the download brought {amount} bytes, but the stored product has "
            f"{expected_size}; the file was not kept. Download it again; if it fails again, {remedy}."
        )
        self.product_name = product_name
        self.expected_size = expected_size
        self.received = received


class WaitTimeout(ApertureClientError):
    """The MOUS did not settle within the time asked for; it keeps going on the server."""

    def __init__(self, detail: MousDetail, timeout_s: float) -> None:
        super().__init__(
            f"{detail.mous_id} is still {detail.state.value} after {timeout_s:g} s; it keeps running on "
            f"the server: `aperture status {detail.mous_id}` shows where it is"
        )
        self.detail = detail
        self.timeout_s = timeout_s


class RequestWaitTimeout(ApertureClientError):
    """A request version did not end within the time asked for; it keeps running on the server."""

    def __init__(self, request_id: str, version: VersionView, timeout_s: float) -> None:
        jobs = version.progress
        done = jobs.succeeded + jobs.failed + jobs.cancelled
        super().__init__(
            f"version {version.version} of {request_id} is still {version.state.value} after {timeout_s:g} s "
            f"({done} of {jobs.total} jobs done); it keeps running on the server: "
            f"`aperture request status {request_id}` shows where it is"
        )
        self.request_id = request_id
        self.version = version
        self.timeout_s = timeout_s


class ProductsUnavailable(ApertureClientError):
    """A request version has no products to offer (HTTP 409): it has not ended, or it was cancelled."""

    def __init__(self, message: str, version: VersionView | None) -> None:
        super().__init__(message)
        self.version = version
