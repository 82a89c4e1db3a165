"""/ui/requests: a small page for astronomers who ask for cubes, served by the coordinator itself.

Plain HTML, CSS and an ES module in web/ (no build step, nothing from other hosts): the page talks to
/api/v1/requests with the bearer token its user types in, as any other client does.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB_FOLDER = Path(__file__).parent / "web"
UI = "/ui"
# Also sent as a header (the page has it as a meta tag too): only this origin's scripts, styles and API.
CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def mount_web_ui(app: FastAPI) -> None:
    """Serve the requests page at /ui/requests and its files (requests.js, requests.css) under /ui/."""

    # Added before the mount: Starlette matches in order, and the mount would answer /ui/requests first.
    @app.get(UI + "/requests", include_in_schema=False)
    async def requests_page() -> FileResponse:
        return FileResponse(
            WEB_FOLDER / "requests.html", media_type="text/html",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    app.mount(UI, StaticFiles(directory=WEB_FOLDER), name="web-ui")
