"""What the weblog shows, as typed records: the exporter fills them from the coordinator's state and the
jobs' results, and the renderer only lays them out.

Files the weblog must carry (preview PNGs, job logs) are given as local paths and copied into it, so that
the weblog folder can travel alone; the FITS products are linked by name in the product folder, which is
`products_href` away from the weblog's root.
"""

from datetime import datetime
from pathlib import Path, PurePosixPath

from aperture_contracts.enums import ImagingKind, JobState, Stage
from aperture_contracts.ids import JobId, MousId
from aperture_contracts.imaging import Beam, ImageProduct
from aperture_contracts.metadata import MousMetadata
from aperture_contracts.qa import QAScore, lowest_score
from pydantic import BaseModel, Field


class SpwSummary(BaseModel):
    spw_id: int = Field(ge=0)
    name: str = ""
    num_channels: int = Field(ge=1)
    centre_frequency_hz: float
    bandwidth_hz: float
    min_frequency_hz: float
    max_frequency_hz: float


class ObservationSummary(BaseModel):
    mous_id: MousId
    project: str = Field("", description="the project code, e.g. 2025.1.00001.S; '' when unknown")
    targets: list[str] = Field(description="science targets, in the order first observed")
    spws: list[SpwSummary] = Field(description="science spws")
    array: str = Field(examples=["ALMA, 25 x 12 m"])
    antennas: list[str]
    time_start: datetime
    time_end: datetime
    measurement_sets: list[str] = Field(default_factory=list)

    @classmethod
    def from_metadata(cls, mous_id: str, metadata: MousMetadata, project: str = "") -> "ObservationSummary":
        """The summary of what ingest found; spws and antennas are merged over the Measurement Sets."""
        science = set(metadata.science_spw_ids)
        spws = {spw.spw_id: spw for ms in metadata.measurement_sets for spw in ms.spectral_windows
                if spw.spw_id in science}
        antennas = {antenna.name: antenna for ms in metadata.measurement_sets for antenna in ms.antennas}
        diameters = sorted({antenna.diameter_m for antenna in antennas.values()}, reverse=True)
        dishes = ", ".join(
            f"{sum(a.diameter_m == d for a in antennas.values())} x {d:g} m" for d in diameters
        )
        observatories = sorted({ms.observatory for ms in metadata.measurement_sets})
        return cls(
            mous_id=mous_id,
            project=project,
            targets=metadata.science_targets,
            spws=[
                SpwSummary(
                    spw_id=spw.spw_id, name=spw.name, num_channels=spw.num_channels,
                    centre_frequency_hz=spw.centre_frequency_hz, bandwidth_hz=spw.bandwidth_hz,
                    min_frequency_hz=spw.min_frequency_hz, max_frequency_hz=spw.max_frequency_hz,
                )
                for _, spw in sorted(spws.items())
            ],
            array=f"{'/'.join(observatories)}, {dishes}",
            antennas=sorted(antennas),
            time_start=min(ms.time_start for ms in metadata.measurement_sets),
            time_end=max(ms.time_end for ms in metadata.measurement_sets),
            measurement_sets=[ms.name for ms in metadata.measurement_sets],
        )


class JobRecord(BaseModel):
    """One job of the MOUS, as it ended (or stands)."""

    job_id: JobId
    stage: Stage
    target: str | None = None
    spw_ids: list[int] = Field(default_factory=list)
    kind: ImagingKind | None = None
    state: JobState
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = Field(None, ge=0)
    attempts: int = Field(1, ge=0)
    qa: list[QAScore] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list, description="failure messages, warnings, notes")
    inputs: dict[str, str] = Field(default_factory=dict, description="what the job was given, by name")
    log: Path | None = Field(None, description="the job's CASA log on local disk; copied into the weblog")

    @property
    def lowest_qa(self) -> QAScore | None:
        return lowest_score(self.qa)


class Figure(BaseModel):
    caption: str
    path: Path = Field(description="a PNG on local disk; copied into the weblog")


class ImageRecord(BaseModel):
    """One image or cube: its figures, its QA, and links to its FITS files."""

    kind: ImagingKind
    target: str
    spw_ids: list[int]
    job_id: JobId | None = Field(None, description="the imaging job that made it (linked to its stage page)")
    files: dict[str, str] = Field(
        description="role (pbcor, image, pb, residual, mask, ...) -> FITS file name in the product folder"
    )
    previews: list[Figure] = Field(default_factory=list, description="the first is the thumbnail")
    beam: Beam
    cell_arcsec: float
    imsize: list[int]
    num_channels: int
    frequency_min_hz: float
    frequency_max_hz: float
    rms_jy: float
    peak_jy: float
    theoretical_sensitivity_jy: float
    threshold_jy: float
    mitigation: list[str] = Field(default_factory=list)
    qa: list[QAScore] = Field(default_factory=list)

    @classmethod
    def from_product(
        cls, product: ImageProduct, previews: list[Figure], job_id: str | None = None
    ) -> "ImageRecord":
        """The record of an imaging job's product; the FITS roles come from the file names, which end in
        `.<role>.fits` (see aperture_imaging.naming)."""
        names = [PurePosixPath(ref.key).name for ref in (product.pbcor, product.image, product.pb, *product.extra)]
        return cls(
            files={name.removesuffix(".fits").rsplit(".", 1)[-1]: name for name in names},
            previews=previews,
            job_id=job_id,
            **product.model_dump(include={
                "kind", "target", "spw_ids", "beam", "cell_arcsec", "imsize", "num_channels",
                "frequency_min_hz", "frequency_max_hz", "rms_jy", "peak_jy", "theoretical_sensitivity_jy",
                "threshold_jy", "mitigation", "qa",
            }),
        )

    @property
    def lowest_qa(self) -> QAScore | None:
        return lowest_score(self.qa)


class WeblogModel(BaseModel):
    observation: ObservationSummary
    pipeline_version: str
    generated_at: datetime
    jobs: list[JobRecord] = Field(description="every job of the MOUS, in the order they ran")
    images: list[ImageRecord]
    products_href: str = Field("..", description="the product folder, relative to the weblog's root")
    product_links: dict[str, str] = Field(
        default_factory=dict, description="label -> file in the product folder, e.g. the manifest, casa_commands.log"
    )

    @property
    def overall_qa(self) -> QAScore | None:
        """The lowest score of any job or image: the home page shows the worst so that it cannot hide."""
        return lowest_score([*(s for job in self.jobs for s in job.qa), *(s for im in self.images for s in im.qa)])
