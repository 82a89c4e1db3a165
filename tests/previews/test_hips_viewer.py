"""The HiPS viewer page in a real headless Chromium: Aladin Lite starts, shows the local HiPS's tiles,
and asks nothing of any other host.

Served over HTTP by a local server on a free port (the page is an ES module that fetches tiles, which
browsers refuse from file://). Chromium needs no extra flag: headless Chromium falls back to SwiftShader
for WebGL 2, which Aladin Lite requires.
"""

import re
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aperture_previews.hips import HipsSurvey, build_hips
from aperture_previews.viewer_page import ALADIN_LITE_PACKAGE, INSTALL_COMMAND, write_viewer_page
from continuum_images import IMAGE_NAME, MOUS_ID, write_continuum_image
from PIL import Image
from support.browser import headless_browser, record_page, serve_folder
from support.requirements import require

TILE_URL = re.compile(r"/Norder(\d+)/Dir\d+/Npix\d+\.png$")
START_TIMEOUT_MS = 30_000
BACKGROUND_GREY = 60  # Aladin Lite's default backgroundColor, rgb(60, 60, 60)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> HipsSurvey:
    require(
        (ALADIN_LITE_PACKAGE / "dist" / "aladin.js").is_file(),
        f"Aladin Lite from npm (`{INSTALL_COMMAND}` installs it)",
    )
    image = write_continuum_image(tmp_path_factory.mktemp("image") / IMAGE_NAME)
    survey = build_hips(image.path, tmp_path_factory.mktemp("hips") / "cont.hips", mous_id=MOUS_ID)
    write_viewer_page(survey)
    return survey


@pytest.fixture
def served(viewer: HipsSurvey) -> Iterator[str]:
    """The HiPS folder on a local HTTP server, as its base URL."""
    with serve_folder(viewer.root) as base:
        yield base


def test_the_viewer_shows_the_local_hips_and_fetches_nothing_from_other_hosts(viewer: HipsSurvey, served: str) -> None:
    tiles_answered: list[tuple[int, int]] = []  # (order, status) of every PNG tile fetched

    def on_response(response: Any) -> None:
        match = TILE_URL.search(response.url)
        if match:
            tiles_answered.append((int(match[1]), response.status))

    with headless_browser() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 700})
        record = record_page(page)
        page.on("response", on_response)
        with page.expect_response(lambda response: TILE_URL.search(response.url) is not None, timeout=START_TIMEOUT_MS):
            page.goto(f"{served}/index.html")
        page.wait_for_function("window.apertureViewer && window.apertureViewer.ready", timeout=START_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        page.wait_for_function(
            f"() => performance.getEntriesByType('resource').some(e => e.name.includes('/Norder{viewer.max_order}/'))",
            timeout=START_TIMEOUT_MS,
        )
        page.wait_for_load_state("networkidle")
        page_status = page.locator("#viewer-status").inner_text()
        view = Image.open(BytesIO(page.locator("#aladin-lite-div").screenshot())).convert("L")
        page.close()

    assert page_status == ""
    assert record.console_errors == []
    assert record.page_errors == []
    assert record.failed_requests == []
    assert record.bad_responses == []
    assert record.remote_requests == []
    assert tiles_answered, "no tile was fetched"
    assert all(status == 200 for _, status in tiles_answered), tiles_answered
    assert viewer.max_order in {order for order, _ in tiles_answered}, "the initial view should be at full depth"
    # Tiles were drawn: the middle of the view (the image, away from the controls) is mostly not Aladin
    # Lite's plain background.
    width, height = view.size
    middle = np.asarray(view.crop((width // 4, height // 4, 3 * width // 4, 3 * height // 4)), dtype=float)
    assert np.mean(np.abs(middle - BACKGROUND_GREY) > 8) > 0.5


def test_the_viewer_page_needs_aladin_lite_installed_and_says_how(tmp_path: Path) -> None:
    image = write_continuum_image(tmp_path / IMAGE_NAME, size=40, source_xy=(20.0, 20.0))
    survey = build_hips(image.path, tmp_path / "cont.hips", mous_id=MOUS_ID)
    with pytest.raises(FileNotFoundError, match=re.escape(INSTALL_COMMAND)):
        write_viewer_page(survey, package=tmp_path / "no-node-modules" / "aladin-lite")
    assert not (survey.root / "index.html").exists()
