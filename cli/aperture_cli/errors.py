"""The failures a user of the client can expect, each with a message that says what is wrong and what to do.

The command line prints these messages and exits with a code per kind; Python callers catch
`ApertureClientError` (or a subclass) instead of httpx's and pydantic's own exceptions.
"""

from aperture_contracts.api import MousDetail


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

    def __init__(self, product_name: str, expected_sha256: str, actual_sha256: str) -> None:
        super().__init__(
            f"{product_name}: the downloaded bytes have SHA-256 {actual_sha256}, but the stored product "
            f"has {expected_sha256}; the file was not kept. Download it again; if it fails again, the "
            "stored object is damaged and the MOUS should be re-run (`aperture submit --rerun`)."
        )
        self.product_name = product_name
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256


class WaitTimeout(ApertureClientError):
    """The MOUS did not settle within the time asked for; it keeps going on the server."""

    def __init__(self, detail: MousDetail, timeout_s: float) -> None:
        super().__init__(
            f"{detail.mous_id} is still {detail.state.value} after {timeout_s:g} s; it keeps running on "
            f"the server: `aperture status {detail.mous_id}` shows where it is"
        )
        self.detail = detail
        self.timeout_s = timeout_s
