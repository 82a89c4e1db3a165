"""The previews step, run in the worker's CASA process like every step (limits, log, isolation), though it
needs no CASA: quick-looks of one image; a cube's moment maps and peak spectrum; an aggregate continuum's
HiPS with its offline viewer page."""

from pathlib import Path
from typing import Any

from aperture_contracts.continuum import ContinuumCase
from aperture_contracts.products import PreviewRole
from aperture_shared.casa.calls import CasaCallLog
from pydantic import BaseModel

from aperture_previews.cube_maps import make_cube_maps
from aperture_previews.hips import build_hips, hips_folder_name
from aperture_previews.quicklook import write_quicklook
from aperture_previews.viewer_page import write_viewer_page

# Cases where no channel of the spw is line: a cube has no line channels to make moment maps of.
NO_LINE_CASES = (ContinuumCase.ALL_CONTINUUM.value, ContinuumCase.NOISY.value)


class PreviewsStepResult(BaseModel):
    files: dict[PreviewRole, str]
    notes: list[str]
    hips_root: str | None = None
    hips_viewer_page: str | None = None
    hips_min_order: int | None = None
    hips_max_order: int | None = None
    hips_tiles: int | None = None


def make_previews(arguments: dict[str, Any], calls: CasaCallLog) -> PreviewsStepResult:
    image, kind = Path(arguments["image"]), arguments["kind"]
    output_dir = Path(arguments["output_dir"])
    spw_ids = arguments["spw_ids"]
    quicklook = write_quicklook(image, output_dir, kind=kind, spw_ids=spw_ids)
    files = {PreviewRole.QUICKLOOK: str(quicklook.png), PreviewRole.THUMBNAIL: str(quicklook.thumbnail)}
    notes: list[str] = []
    hips: dict[str, Any] = {}
    if kind == "cube":
        cases = arguments["continuum_cases"]
        if cases and all(case in NO_LINE_CASES for case in cases):
            notes.append("no moment maps: findcont found no line in this spw (all of it is continuum)")
        else:
            maps = make_cube_maps(image, output_dir, [tuple(r) for r in arguments["continuum_ranges_hz"]],
                                  spw_ids=spw_ids)
            files |= {
                PreviewRole.MOMENT0: str(maps.moment0_fits), PreviewRole.MOMENT0_PNG: str(maps.moment0_quicklook.png),
                PreviewRole.PEAK: str(maps.peak_fits), PreviewRole.PEAK_PNG: str(maps.peak_quicklook.png),
                PreviewRole.SPECTRUM_PNG: str(maps.spectrum_png),
            }
    if arguments["hips"]:
        survey = build_hips(image, output_dir / hips_folder_name(image), mous_id=arguments["mous_id"], threads=False)
        hips = {
            "hips_root": str(survey.root),
            "hips_viewer_page": str(write_viewer_page(survey, Path(arguments["aladin_lite_dir"]))),
            "hips_min_order": survey.min_order, "hips_max_order": survey.max_order,
            "hips_tiles": sum(survey.tiles_per_order.values()),
        }
    return PreviewsStepResult(files=files, notes=notes, **hips)
