"""The weblog in a real headless browser (Chromium), served by a local web server: every page loads with
no error, no failed or remote request and every image decoded; on a large MOUS the home page comes up
quickly with its target sections closed, and the filter finds the rows it should."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import headless_browser, record_page, serve_folder

PAGE_LOAD_LIMIT_S = 3.0
# Decode every image, the lazy ones too (loading="lazy" waits for scrolling otherwise), then read sizes.
LOAD_ALL_IMAGES = """async () => {
  for (const details of document.querySelectorAll("details")) { details.open = true; }
  const images = [...document.images];
  images.forEach((image) => { image.loading = "eager"; });
  await Promise.all(images.map((image) => image.decode().catch(() => null)));
  return images.map((image) => [image.getAttribute("src"), image.naturalWidth]);
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def small_site(small_weblog) -> Iterator[str]:
    """The small weblog's root URL."""
    with serve_folder(small_weblog.case.products) as url:
        yield f"{url}/weblog/"


@pytest.fixture(scope="module")
def large_site(large_weblog) -> Iterator[str]:
    with serve_folder(large_weblog.case.products) as url:
        yield f"{url}/weblog/"


def assert_clean(record: Any, url: str) -> None:
    assert record.console_errors == [], url
    assert record.page_errors == [], url
    assert record.failed_requests == [], url
    assert record.bad_responses == [], url
    assert record.remote_requests == [], url


def test_every_page_of_the_small_weblog_loads_cleanly_with_all_images(browser, small_weblog, small_site) -> None:
    weblog = small_weblog.case.weblog
    names = sorted(path.relative_to(weblog).as_posix() for path in weblog.rglob("*.html"))
    assert len(names) == 15
    images_seen = 0
    page = browser.new_page()  # one tab for all pages; its record is checked after each
    record = record_page(page)
    for name in names:
        page.goto(small_site + name, wait_until="load")
        sizes = page.evaluate(LOAD_ALL_IMAGES)

        assert [src for src, width in sizes if width == 0] == [], name
        assert page.title().endswith("Aperture weblog")
        assert_clean(record, name)
        images_seen += len(sizes)
    images = small_weblog.case.model.images
    assert images_seen == len(images) + sum(len(image.previews) for image in images)  # thumbnails + detail pages


def test_the_weblog_works_opened_from_disk(browser, small_weblog) -> None:
    """People open a downloaded weblog from disk: styles, script and images must load from file:// too."""
    page = browser.new_page()
    record = record_page(page)
    page.goto((small_weblog.case.weblog / "index.html").as_uri())

    assert page.evaluate("getComputedStyle(document.querySelector('header.site')).backgroundColor") == "rgb(21, 35, 58)"
    assert page.is_visible("#filter")  # the script ran and showed the filter
    sizes = page.evaluate(LOAD_ALL_IMAGES)
    assert sizes and all(width > 0 for _, width in sizes)
    assert record.console_errors == [] and record.page_errors == [] and record.failed_requests == []


def test_without_javascript_every_row_is_there_and_the_filter_is_hidden(browser, large_weblog, large_site) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(large_site + "index.html")

    assert page.locator("tr[data-filter-row]").count() == len(large_weblog.case.model.images)
    assert page.is_hidden("#filter")
    assert page.is_visible("noscript >> text=Filtering needs JavaScript") or "Filtering needs JavaScript" in (
        page.content()
    )
    page.click("#target-NGC_4003 > summary")  # a section opens by hand
    assert page.locator("#target-NGC_4003 tr[data-filter-row]:visible").count() == 17
    context.close()


def test_large_home_page_comes_up_quickly_with_target_sections_closed(browser, large_site) -> None:
    page = browser.new_page()
    record = record_page(page)
    pngs: list[str] = []
    page.on("request", lambda request: pngs.append(request.url) if request.url.endswith(".png") else None)

    started = time.perf_counter()
    page.goto(large_site + "index.html", wait_until="load")
    load_s = time.perf_counter() - started
    timing = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                           " return [n.domContentLoadedEventEnd, n.loadEventEnd, n.transferSize]; })()")
    print(f"\nlarge home page: load {load_s:.2f} s (DOMContentLoaded {timing[0]:.0f} ms, load {timing[1]:.0f} ms, "
          f"{timing[2]} bytes)")

    assert load_s < PAGE_LOAD_LIMIT_S
    assert page.locator("details[data-filter-group]:not([open])").count() == 40
    assert page.locator("tr[data-filter-row]:visible").count() == 0
    assert pngs == []  # thumbnails in closed sections wait until a section opens
    page.click("#target-NGC_4000 > summary")  # opening a section loads its thumbnails near the view, only
    page.wait_for_function("() => document.querySelector('#target-NGC_4000 img').naturalWidth > 0")
    assert 0 < len(pngs) <= 17 and all("/previews/NGC_4000." in url for url in pngs)
    assert_clean(record, "index.html")


def test_filter_by_target_name(browser, large_weblog, large_site) -> None:
    images = large_weblog.case.model.images
    page = browser.new_page()
    record = record_page(page)
    page.goto(large_site + "index.html")

    page.fill("input[name=target]", "NGC 4007")
    assert page.locator("tr[data-filter-row]:visible").count() == 17
    assert page.locator("details[data-filter-group]:visible").count() == 1
    assert page.text_content("#filter-status") == f"17 of {len(images)} shown"

    page.fill("input[name=target]", "ngc 401")  # a part of a name, in any case
    expected = sum("ngc 401" in image.target.lower() for image in images)
    assert expected == 170
    assert page.locator("tr[data-filter-row]:visible").count() == expected
    assert page.locator("details[data-filter-group]:visible").count() == 10

    page.click("button[type=reset]")
    page.wait_for_function(f"() => document.getElementById('filter-status').textContent === '{len(images)} in all'")
    assert page.locator("details[data-filter-group]:visible").count() == 40
    assert_clean(record, "index.html")


def test_filter_by_band_spw_and_kind(browser, large_weblog, large_site) -> None:
    images = large_weblog.case.model.images
    page = browser.new_page()
    page.goto(large_site + "index.html")

    page.select_option("select[name=band]", "red")
    red = [image for image in images if image.lowest_qa is not None and image.lowest_qa.band.value == "red"]
    assert 0 < len(red) < len(images)
    assert page.locator("tr[data-filter-row]:visible").count() == len(red)
    assert set(page.eval_on_selector_all("tr[data-filter-row]:visible", "rows => rows.map(r => r.dataset.band)")) == {
        "red"
    }

    page.select_option("select[name=spw]", "3")
    page.select_option("select[name=kind]", "cube")
    expected = [image for image in red if image.spw_ids == [3] and image.kind.value == "cube"]
    assert 0 < len(expected)
    assert page.locator("tr[data-filter-row]:visible").count() == len(expected)


def test_large_stage_page_loads_quickly_and_filters_jobs(browser, large_weblog, large_site) -> None:
    jobs = [job for job in large_weblog.case.model.jobs if job.stage.value == "imaging"]
    page = browser.new_page()
    record = record_page(page)

    started = time.perf_counter()
    page.goto(large_site + "stages/imaging.html", wait_until="load")
    assert time.perf_counter() - started < PAGE_LOAD_LIMIT_S

    page.select_option("select[name=kind]", "cube")
    page.select_option("select[name=band]", "none")  # the failed cube has no score
    expected = [job for job in jobs if job.kind is not None and job.kind.value == "cube" and not job.qa]
    assert len(expected) == 1
    assert page.locator("tr[data-filter-row]:visible").count() == 1
    assert page.is_visible(f"#job-{expected[0].job_id}")
    assert_clean(record, "stages/imaging.html")
