"""The product manifest of an MOUS (`<mous>.manifest.json`, a delivered file): every other file of the
product folder with its size, SHA-256 and what it is (the export service writes it)."""

from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aperture_contracts.enums import ImagingKind
from aperture_contracts.ids import MousId, Sha256
from aperture_contracts.qa import QABand, band_for
from aperture_contracts.version import SchemaVersion


class FileKind(StrEnum):
    """What a delivered file is."""

    IMAGE = "image"  # a continuum image (mfs or cont), primary-beam corrected or not
    CUBE = "cube"  # a line cube, primary-beam corrected or not
    PB = "pb"  # the primary beam of an image or cube
    RESIDUAL = "residual"
    MASK = "mask"
    AUXILIARY = "auxiliary"  # other FITS of an image: spectral index, psf, model
    CONT_DAT = "cont_dat"
    PREVIEW = "preview"  # PNG figures
    MOC = "moc"  # the footprint as an IVOA MOC
    OBSCORE = "obscore"  # the ObsCore record(s) of the products
    WEBLOG = "weblog"  # any file of the weblog folder
    CASA_COMMANDS = "casa_commands"
    LOG = "log"
    REPORT = "report"  # JSON reports, e.g. the ingest report
    OTHER = "other"


class FileDescription(BaseModel):
    """What a file is, beside its bytes: given by the exporter, or read from its ALMA-style name."""

    model_config = ConfigDict(extra="forbid")

    kind: FileKind
    target: str | None = None
    spw_ids: list[int] = Field(default_factory=list)
    imaging_kind: ImagingKind | None = None
    qa_score: float | None = Field(None, ge=0.0, le=1.0, description="the lowest QA score of the product")


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="path relative to the product folder, '/'-separated",
                      examples=["uid___A001_X3a1_X7.SimGalaxy_sci.spw0.mfs.I.pbcor.fits"])
    size_bytes: int = Field(ge=0)
    sha256: Sha256
    kind: FileKind
    target: str | None = None
    spw_ids: list[int] = Field(default_factory=list)
    imaging_kind: ImagingKind | None = None
    qa_score: float | None = Field(None, ge=0.0, le=1.0)
    qa_band: QABand | None = Field(None, description="the ALMA colour band of qa_score (filled from it)")

    @model_validator(mode="after")
    def _band_follows_score(self) -> Self:
        expected = None if self.qa_score is None else band_for(self.qa_score)
        if self.qa_band is not None and self.qa_band != expected:
            raise ValueError(f"{self.name}: qa_band {self.qa_band} does not match qa_score {self.qa_score}")
        self.qa_band = expected
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: SchemaVersion = "1.0"
    kind: Literal["aperture.product-manifest"] = "aperture.product-manifest"
    mous_id: MousId
    pipeline_version: str = Field(examples=["0.1.0"])
    created_at: datetime
    files: list[ManifestFile]

    @model_validator(mode="after")
    def _names_unique(self) -> Self:
        names = [file.name for file in self.files]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"files listed more than once: {', '.join(duplicates)}")
        return self
