"""Imaging requests in a Jupyter notebook: a handle that shows itself as HTML (state, a progress bar, QA per
image), waits with a display that updates in place, and lists products as a table with download links.

    from aperture_cli.client import ApertureClient
    aperture = ApertureClient(api_url, token=...)
    request = aperture.request("req-0123456789ab")
    request.wait()                    # a progress bar, redrawn as the jobs end
    request                           # state, progress and QA per image
    request.products()                # name, kind, target, spws, size and a link per file
    request.products().to_pandas()    # if pandas is installed
    request.download("products", kinds={"pbcor"})

IPython and pandas are optional (the CLI depends on neither): outside IPython, wait() prints a line per
change; to_pandas() says how to get pandas when it is missing. Every string from the API is HTML-escaped.
"""

import html
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aperture_contracts.enums import JobState
from aperture_contracts.requests import ImageCheck, ProductList, RequestProduct, RequestState, RequestView, VersionView

from aperture_cli.client import ended_jobs, version_of
from aperture_cli.request_views import progress_counts, progress_line
from aperture_cli.views import format_time

if TYPE_CHECKING:
    from aperture_cli.client import ApertureClient

STATE_COLOURS: dict[RequestState, str] = {
    RequestState.QUEUED: "#555",
    RequestState.RUNNING: "#0a7ea4",
    RequestState.SUCCEEDED: "#1a7f37",
    RequestState.FAILED: "#cf222e",
    RequestState.CANCELLED: "#8250df",
}
_TABLE_STYLE = "border-collapse: collapse; font-size: 90%"
_LINK_SCHEMES = ("https://", "http://")


def _text(value: object) -> str:
    """Any value from the API, safe inside an element or an attribute."""
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[str]], css_class: str) -> str:
    """An HTML table; the cells are HTML already (escaped by the caller), the headers are plain text."""
    head = "".join(f"<th>{_text(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<table class="{css_class}" style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _spws(spw_ids: list[int]) -> str:
    return ", ".join(str(spw) for spw in spw_ids)


def _link(url: str, label: str) -> str:
    # Only web links become anchors: a javascript: or data: URL from a broken server must not be clickable.
    if not url.lower().startswith(_LINK_SCHEMES):
        return "-"
    return f'<a href="{_text(url)}" target="_blank" rel="noopener noreferrer">{_text(label)}</a>'


def progress_html(version: VersionView) -> str:
    """The version's state and an HTML <progress> of its jobs ended."""
    jobs = version.progress
    colour = STATE_COLOURS[version.state]
    return (
        f'<div class="aperture-progress"><span style="color: {colour}; font-weight: bold">'
        f"{_text(version.state.value)}</span> "
        f'<progress value="{ended_jobs(jobs)}" max="{max(jobs.total, 1)}"></progress> '
        f"{_text(progress_counts(version))}</div>"
    )


def qa_html(checks: list[ImageCheck]) -> str:
    """QA per image: measured rms and beam against what the data should give, and the verdict."""
    rows = [
        [
            _text(check.image),
            _text(check.kind.value),
            _text(check.target),
            _text(_spws(check.spw_ids)),
            f"{check.rms_jy * 1e3:.3g}",
            f"{check.expected_rms_jy * 1e3:.3g}",
            f"{check.rms_ratio:.2f}",
            f"{check.beam_major_arcsec:.2f} × {check.beam_minor_arcsec:.2f}",
            "-" if check.beam_ratio is None else f"{check.beam_ratio:.2f}",
            "passed" if check.passed else '<strong style="color: #cf222e">not passed</strong>',
            "<br>".join(_text(note) for note in check.notes),
        ]
        for check in checks
    ]
    headers = ["image", "kind", "target", "spws", "rms mJy/beam", "expected", "rms ratio", "beam ″", "beam ratio",
               "QA", "notes"]
    return _table(headers, rows, "aperture-qa")


def request_html(request: RequestView, version: VersionView) -> str:
    """A request as a notebook shows it: who, which MOUS, the version's state, progress, failed jobs, QA."""
    if version.passed_qa is None:
        verdict = "QA not yet known"
    else:
        verdict = "QA passed" if version.passed_qa else "QA not passed"
    parts = [
        f"<div><strong>{_text(request.request_id)}</strong> · MOUS {_text(request.mous_id)} · version "
        f"{version.version} of {len(request.versions)} · {_text(request.owner)}</div>",
        progress_html(version),
        f"<div>{_text(verdict)} · {_text(version.reason)}</div>",
    ]
    failed = [job for job in version.jobs if job.state is JobState.FAILED]
    if failed:
        items = "".join(
            f"<li>{_text(job.stage.value)} {_text(job.kind)} {_text(job.target or '')}: {_text(job.reason)}</li>"
            for job in failed
        )
        parts.append(f"<div>failed jobs:<ul>{items}</ul></div>")
    if version.qa:
        parts.append(qa_html(version.qa))
    return '<div class="aperture-request">' + "".join(parts) + "</div>"


class VersionProgress:
    """One poll's picture of a version, for a display that is updated in place while waiting."""

    def __init__(self, version: VersionView) -> None:
        self.version = version

    def _repr_html_(self) -> str:
        return progress_html(self.version)

    def __repr__(self) -> str:
        return progress_line(self.version)


class ProductTable:
    """A version's products: an HTML table in a notebook, rows as dicts, or a pandas DataFrame."""

    def __init__(self, listing: ProductList) -> None:
        self.listing = listing

    def __len__(self) -> int:
        return len(self.listing.products)

    def __iter__(self) -> Iterator[RequestProduct]:
        return iter(self.listing.products)

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "name": product.name,
                "kind": product.kind,
                "image_kind": None if product.image_kind is None else product.image_kind.value,
                "target": product.target,
                "spw_ids": list(product.spw_ids),
                "size_mb": product.size / 1e6,
                "sha256": product.sha256,
                "url": product.url,
            }
            for product in self.listing.products
        ]

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (pandas is not a dependency of the CLI)."""
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "ProductTable.to_pandas() needs pandas, which is not installed in this environment: install it "
                "there (e.g. `pip install pandas`), or use ProductTable.rows(), a list of dicts"
            ) from None
        return pandas.DataFrame(self.rows())

    def _repr_html_(self) -> str:
        listing = self.listing
        rows = [
            [
                _text(product.name),
                _text(product.kind),
                _text(product.target or ""),
                _text(_spws(product.spw_ids)),
                f"{product.size / 1e6:.2f}",
                _link(product.url, "download"),
            ]
            for product in listing.products
        ]
        table = _table(["name", "kind", "target", "spws", "size (MB)", "link"], rows, "aperture-products")
        total_mb = sum(product.size for product in listing.products) / 1e6
        caption = (
            f"<div>{_text(listing.request_id)} version {listing.version}: {len(listing.products)} files, "
            f"{total_mb:.2f} MB; links valid until {_text(format_time(listing.links_expire_at))}</div>"
        )
        return caption + table

    def __repr__(self) -> str:
        lines = [f"{self.listing.request_id} version {self.listing.version}: {len(self)} products"]
        lines += [f"  {product.name}  {product.kind}  {product.size / 1e6:.2f} MB" for product in self]
        return "\n".join(lines)


class RequestHandle:
    """An imaging request to follow from a notebook; made by ApertureClient.request(request_id).

    `version` picks one version (default: always the latest). The handle keeps the last view it read
    (`view`); refresh() reads it again, and it is shown as HTML when it is a cell's value.
    """

    def __init__(self, client: "ApertureClient", request_id: str, version: int | None = None) -> None:
        self._client = client
        self.request_id = request_id
        self._version = version
        # Read at once, so that a mistyped id or a missing token fails where it was typed.
        self.view: RequestView = client.get_request(request_id)
        version_of(self.view, version)  # and so does a version that is not there

    @property
    def version(self) -> VersionView:
        return version_of(self.view, self._version)

    @property
    def state(self) -> RequestState:
        return self.version.state

    @property
    def passed_qa(self) -> bool | None:
        return self.version.passed_qa

    def refresh(self) -> "RequestHandle":
        self.view = self._client.get_request(self.request_id)
        return self

    def wait(self, progress: bool = True, *, poll_s: float = 2.0, timeout_s: float | None = None) -> "RequestHandle":
        """Wait until the version has ended, showing its progress (in place under IPython, else a line per
        change). Raises RequestWaitTimeout past timeout_s; the version keeps running."""
        self.view = self._client.wait_for_request(
            self.request_id,
            version=self._version,
            poll_s=poll_s,
            timeout_s=timeout_s,
            on_progress=_progress_display() if progress else None,
        )
        return self

    def products(self) -> ProductTable:
        return ProductTable(self._client.request_products(self.request_id, self.version.version))

    def download(self, into: Path | str = ".", kinds: Collection[str] | None = None) -> list[Path]:
        """Fetch the version's products (of `kinds` only, if given) under into/<request id>/v<version>/."""
        return self._client.download_request(self.request_id, self.version.version, into=Path(into), kinds=kinds)

    def cancel(self) -> "RequestHandle":
        self.view = self._client.cancel_request(self.request_id)
        return self

    def _repr_html_(self) -> str:
        return request_html(self.view, self.version)

    def __repr__(self) -> str:
        return f"<RequestHandle {self.request_id}: {progress_line(self.version)}>"


def _progress_display() -> Callable[[VersionView], None]:
    """How wait() shows progress: a display updated in place under IPython, else a printed line per change."""
    display = _ipython_display()
    if display is None:
        last_line = ""

        def print_changes(version: VersionView) -> None:
            nonlocal last_line
            line = progress_line(version)
            if line != last_line:
                print(line, flush=True)
                last_line = line

        return print_changes
    handle: Any = None

    def update_in_place(version: VersionView) -> None:
        nonlocal handle
        if handle is None:
            handle = display(VersionProgress(version), display_id=True)
        else:
            handle.update(VersionProgress(version))

    return update_in_place


def _ipython_display() -> Callable[..., Any] | None:
    """IPython's display(), when this code runs under IPython (a notebook or its shell); else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    # IPython may be installed while this is a plain Python process: then display() would only print.
    if get_ipython() is None:
        return None
    return display
