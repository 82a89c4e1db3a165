"""What the product stages make: previews and HiPS, footprints with their ObsCore records, and the export
package of an MOUS."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from aperture_contracts.obscore import ObsCoreRecord
from aperture_contracts.storage import ObjectRef


class PreviewRole(StrEnum):
    """What a preview file shows."""

    QUICKLOOK = "quicklook"  # PNG of the image (a cube: its peak channel), sky axes, beam, colour bar
    THUMBNAIL = "thumbnail"  # small PNG without axes
    MOMENT0 = "moment0"  # FITS: integrated intensity over the line channels
    MOMENT0_PNG = "moment0_png"
    PEAK = "peak"  # FITS: peak intensity (moment 8) over the line channels
    PEAK_PNG = "peak_png"
    SPECTRUM_PNG = "spectrum_png"  # the spectrum at the peak, continuum ranges marked


class PreviewFile(BaseModel):
    role: PreviewRole
    file: ObjectRef


class HipsProduct(BaseModel):
    """A HiPS of a target's aggregate continuum image, with a page that shows it offline."""

    prefix: str = Field(description="the HiPS root in storage; `properties` and Norder*/ lie under it")
    properties: ObjectRef
    viewer_page: ObjectRef = Field(description="index.html beside the HiPS: an Aladin Lite page, all files local")
    max_order: int = Field(ge=0)
    min_order: int = Field(ge=0)
    tiles: int = Field(ge=0)
    files: list[ObjectRef] = Field(default_factory=list, description="every file of the HiPS and its page")


class PreviewsResult(BaseModel):
    """The previews of one image; for a target's aggregate continuum, its HiPS too."""

    result_type: Literal["previews"] = "previews"

    kind: str = Field(description="the image's kind (mfs, cont, cube)")
    target: str
    spw_ids: list[int]
    files: list[PreviewFile]
    hips: HipsProduct | None = None


class FootprintResult(BaseModel):
    """Where one image looks on the sky, and its ObsCore record."""

    result_type: Literal["footprint"] = "footprint"

    kind: str
    target: str
    spw_ids: list[int]
    moc: ObjectRef = Field(description="MOC (FITS) of the pixels whose primary-beam response is above the limit")
    moc_json: ObjectRef
    moc_order: int = Field(ge=0, le=29)
    area_deg2: float = Field(ge=0)
    s_region: str
    pb_limit: float
    obscore: ObsCoreRecord
    votable: ObjectRef = Field(description="the ObsCore record as a VOTable")


class ExportResult(BaseModel):
    """The export package of an MOUS: every product under one prefix, with a manifest and a weblog."""

    result_type: Literal["export"] = "export"

    package_prefix: str
    manifest: ObjectRef
    weblog: ObjectRef = Field(description="the weblog's home page (index.html) in storage")
    casa_commands: ObjectRef
    files: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    created_at: datetime
