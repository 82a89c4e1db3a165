"""The footprint step, run in the worker's CASA process like every step (limits, log, isolation), though it
needs no CASA: read the PB, write the MOC (FITS, JSON, ASCII), the ObsCore record (JSON, VOTable)."""

from pathlib import Path
from typing import Any

from aperture_contracts.obscore import ObsCoreRecord
from aperture_shared.casa.calls import CasaCallLog
from pydantic import BaseModel

from aperture_footprint.moc import write_footprint_moc
from aperture_footprint.obscore import ProductIdentity, obscore_record, write_obscore_json, write_obscore_votable


class FootprintStepResult(BaseModel):
    moc_fits: str
    moc_json: str
    moc_order: int
    area_deg2: float
    obscore: ObsCoreRecord
    obscore_json: str
    votable: str


def make_footprint(arguments: dict[str, Any], calls: CasaCallLog) -> FootprintStepResult:
    image, pb = Path(arguments["image"]), Path(arguments["pb"])
    output_dir = Path(arguments["output_dir"])
    stem = arguments["stem"]
    moc = write_footprint_moc(pb, output_dir, pblimit=arguments["pb_limit"])
    record = obscore_record(image, pb, ProductIdentity.model_validate(arguments["identity"]),
                            pblimit=arguments["pb_limit"])
    json_path = write_obscore_json([record], output_dir / f"{stem}.obscore.json")
    votable = write_obscore_votable([record], output_dir / f"{stem}.obscore.xml")
    return FootprintStepResult(
        moc_fits=str(moc.fits_path), moc_json=str(moc.json_path), moc_order=moc.order, area_deg2=moc.area_deg2,
        obscore=record, obscore_json=str(json_path), votable=str(votable),
    )
