"""The coordinator's own small pages, served by the coordinator itself:
- /ui/requests, for astronomers who ask for cubes: the form, and their requests as they run (progress,
  jobs, result QA, products with download links);
- /ui/operations, for operators: every MOUS and every user's requests;
- /ui/campaigns, for operators: the archive re-processing campaigns, their reports (progress, failures
  by error class, throughput, expected completion), and pause, resume, cancel and retry of a class.

Plain HTML, CSS and ES modules in web/ (no build step, nothing from other hosts): the pages talk to the
API with the bearer token their user types in, as any other client does.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB_FOLDER = Path(__file__).parent / "web"
UI = "/ui"
PAGES = {"requests": "requests.html", "operations": "operations.html", "campaigns": "campaigns.html"}
# Also sent as a header (the pages have it as a meta tag too): only this origin's scripts, styles and API.
CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _page_route(app: FastAPI, path: str, html: Path) -> None:
    @app.get(path, include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(html, media_type="text/html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def mount_web_ui(app: FastAPI) -> None:
    """Serve each page at /ui/<name> and their shared files (scripts, the style sheet) under /ui/."""
    # Added before the mount: Starlette matches in order, and the mount would answer /ui/requests first.
    for name, html in PAGES.items():
        _page_route(app, f"{UI}/{name}", WEB_FOLDER / html)
    app.mount(UI, StaticFiles(directory=WEB_FOLDER), name="web-ui")
