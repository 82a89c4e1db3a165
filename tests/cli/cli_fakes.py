"""An in-memory stand-in for the coordinator's HTTP API, served to the client through an httpx transport.

It speaks the real contract (bodies are the contracts' models), records what it received, and plays
back a scripted sequence of MOUS details so that waiting, failing and downloading can be driven exactly.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aperture_cli.client import ApertureClient
from aperture_contracts.api import MousDetail, MousList, MousSummary, Problem
from aperture_contracts.enums import JobState, MousState, Stage

API_URL = "http://aperture.test:8000"
STORAGE_URL = "http://storage.test:9000"
MOUS_ID = "uid://A001/X2fa/X2dd"
MOUS_KEY = "uid___A001_X2fa_X2dd"
SUBMITTED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class FormPart:
    headers: dict[str, str]
    content: bytes

    @property
    def filename(self) -> str | None:
        match = re.search(r'filename="([^"]*)"', self.headers.get("content-disposition", ""))
        return match.group(1) if match else None


def parse_multipart(request: httpx.Request, body: bytes) -> dict[str, FormPart]:
    """The form parts of a multipart/form-data body, by field name."""
    boundary = re.search(r"boundary=([^;]+)", request.headers["content-type"])
    assert boundary is not None, request.headers["content-type"]
    delimiter = b"--" + boundary.group(1).encode()
    parts: dict[str, FormPart] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        name_match = re.search(r'name="([^"]*)"', headers["content-disposition"])
        assert name_match is not None
        parts[name_match.group(1)] = FormPart(headers, content.removesuffix(b"\r\n"))
    return parts


@dataclass
class ReceivedUpload:
    form: dict[str, FormPart]
    content_length: str | None
    body_size: int
    # The largest piece the body arrived in: a body built in memory comes as one piece.
    largest_chunk: int


class _ApiTransport(httpx.BaseTransport):
    """Hands requests to the fake with their body still a stream, so the fake can see how it is sent."""

    def __init__(self, fake: "FakeCoordinator") -> None:
        self._fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._fake.handle(request)


@dataclass
class FakeCoordinator:
    """The API as the CLI sees it. Set `details` to the successive answers of GET /mous/{id}."""

    details: list[MousDetail] = field(default_factory=list)
    submit_status: int = 201
    # When set, every API request is answered with this status and body.
    failure: tuple[int, Any] | None = None
    # Product bytes by URL path on the storage host; `expired_links` paths answer 403 once.
    stored_objects: dict[str, bytes] = field(default_factory=dict)
    expired_links: set[str] = field(default_factory=set)
    uploads: list[ReceivedUpload] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    detail_polls: int = 0

    def transport(self) -> httpx.BaseTransport:
        return _ApiTransport(self)

    def client(self) -> ApertureClient:
        return ApertureClient(API_URL, transport=self.transport())

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "storage.test":
            return self._serve_object(request)
        if self.failure is not None:
            status, body = self.failure
            if isinstance(body, str | bytes):
                return httpx.Response(status, content=body, headers={"content-type": "text/html"})
            return httpx.Response(status, json=body)
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/mous":
            return self._submit(request)
        if request.method == "GET" and path == "/api/v1/mous":
            return self._list(request)
        if request.method == "GET" and path == f"/api/v1/mous/{MOUS_KEY}":
            return self._detail()
        if request.method == "POST" and path == f"/api/v1/mous/{MOUS_KEY}/cancel":
            summary = self.current_summary().model_copy(
                update={"state": MousState.CANCELLED, "reason": "cancelled by a user"}
            )
            return httpx.Response(200, content=summary.model_dump_json())
        problem = Problem(detail=f"no MOUS at {path}: `aperture list` shows the ones there are")
        return httpx.Response(404, content=problem.model_dump_json())

    def current_summary(self) -> MousSummary:
        detail = (
            self.details[min(self.detail_polls, len(self.details) - 1)] if self.details else make_detail()
        )
        return MousSummary.model_validate(detail.model_dump(include=set(MousSummary.model_fields)))

    def _submit(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        chunks = list(request.stream)
        body = b"".join(chunks)
        self.uploads.append(
            ReceivedUpload(
                form=parse_multipart(request, body),
                content_length=request.headers.get("content-length"),
                body_size=len(body),
                largest_chunk=max(len(chunk) for chunk in chunks),
            )
        )
        return httpx.Response(self.submit_status, content=self.current_summary().model_dump_json())

    def _list(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        items = [self.current_summary()]
        body = MousList(items=items[offset : offset + limit], total=len(items))
        return httpx.Response(200, content=body.model_dump_json())

    def _detail(self) -> httpx.Response:
        detail = self.details[min(self.detail_polls, len(self.details) - 1)]
        self.detail_polls += 1
        return httpx.Response(200, content=detail.model_dump_json())

    def _serve_object(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in self.expired_links:
            self.expired_links.discard(path)
            return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code>Request has expired</Error>")
        if path not in self.stored_objects:
            return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")
        return httpx.Response(200, content=self.stored_objects[path])


def make_job(
    job_id: str,
    stage: Stage,
    state: JobState,
    *,
    reason: str = "",
    attempts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "stage": stage,
        "kind": "",
        "target": None,
        "spw_id": None,
        "state": state,
        "reason": reason,
        "depends_on": [],
        "attempts": attempts or [],
    }


def make_detail(
    state: MousState = MousState.RECEIVED,
    *,
    reason: str = "",
    jobs: list[dict[str, Any]] | None = None,
    errors: list[str] | None = None,
    products: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    minutes_later: int = 0,
) -> MousDetail:
    return MousDetail.model_validate(
        {
            "mous_id": MOUS_ID,
            "state": state,
            "reason": reason,
            "run": 1,
            "submitted_at": SUBMITTED_AT,
            "updated_at": SUBMITTED_AT + timedelta(minutes=minutes_later),
            "package_name": f"{MOUS_KEY}.ms.tar",
            "metadata": metadata,
            "jobs": jobs or [],
            "errors": errors or [],
            "qa": [],
            "products": products or [],
        }
    )


def make_product(name: str, content: bytes, *, sha256: str | None = None) -> tuple[dict[str, Any], str]:
    """A ProductView body for `content`, with a link on the fake storage host; returns it and its path."""
    path = f"/aperture/mous/{MOUS_KEY}/products/{name}"
    product = {
        "name": name,
        "object": {
            "key": f"mous/{MOUS_KEY}/products/{name}",
            "sha256": sha256 or hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "content_type": "application/fits",
        },
        "download_url": f"{STORAGE_URL}{path}?X-Amz-Signature=abc",
    }
    return product, path


def make_measurement_set(parent: Path, name: str = "uid___A002_X1_X2.ms") -> Path:
    """A directory shaped like a Measurement Set (a casacore table with sub-tables); no CASA needed."""
    ms = parent / name
    (ms / "ANTENNA").mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"main table header " * 10)
    (ms / "table.f0").write_bytes(bytes(range(256)) * 64)
    (ms / "ANTENNA" / "table.dat").write_bytes(b"antenna table header")
    (ms / "ANTENNA" / "table.f0").write_bytes(b"\x00\x01" * 500)
    return ms
