"""Rendered weblogs shared by the export tests: a small MOUS and a large one (40 targets x 8 spws)."""

import time
from dataclasses import dataclass

import pytest
from aperture_export.weblog.render import render_weblog
from weblog_factory import HOSTILE_TARGET, WeblogCase, build_case, target_names


@dataclass(frozen=True)
class RenderedWeblog:
    case: WeblogCase
    render_s: float


def rendered(case: WeblogCase) -> RenderedWeblog:
    started = time.perf_counter()
    render_weblog(case.model, case.weblog)
    return RenderedWeblog(case, time.perf_counter() - started)


@pytest.fixture(scope="session")
def small_weblog(tmp_path_factory: pytest.TempPathFactory) -> RenderedWeblog:
    """Two targets (one whose name is full of HTML) x 2 spws: 9 images, one failed cube."""
    return rendered(build_case(tmp_path_factory.mktemp("small-weblog"), [HOSTILE_TARGET, "NGC 253"], num_spws=2))


@pytest.fixture(scope="session")
def large_weblog(tmp_path_factory: pytest.TempPathFactory) -> RenderedWeblog:
    """40 targets x 8 spws: 679 images and over a thousand jobs."""
    return rendered(build_case(tmp_path_factory.mktemp("large-weblog"), target_names(40), num_spws=8))
