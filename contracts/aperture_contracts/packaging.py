"""The MS package: what a submitted archive may carry beside its Measurement Sets."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.version import SchemaVersion

RESTORE_MANIFEST_NAME = "aperture-restore.json"
# An operator's edited continuum ranges (ALMA cont.dat format), beside the manifest at the package's root.
OPERATOR_CONT_DAT_NAME = "cont.dat"
# An operator's flux densities of the flux calibrators (the ALMA pipeline's flux.csv format), at the root too.
OPERATOR_FLUX_CSV_NAME = "flux.csv"


class CalibrationApply(BaseModel):
    """One calibration table to apply, as applycal takes it."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="path of the table inside the package", examples=["cal/X1.bandpass"])
    interp: str = Field("linear", examples=["linear", "nearest", "linear,linearflag"])
    spwmap: list[int] = Field(default_factory=list)
    gainfield: str = Field("", description="field(s) whose solutions apply; '' for all")
    calwt: bool = False


class RestoreManifest(BaseModel):
    """`aperture-restore.json` at the package's root: how to restore the calibrated data."""

    model_config = ConfigDict(extra="forbid")

    schema_version: SchemaVersion = "1.0"
    kind: Literal["aperture.restore-manifest"] = "aperture.restore-manifest"
    mous_uid: str | None = Field(None, examples=["uid://A001/X2fa/X2dd"])
    apply: list[CalibrationApply] = Field(
        default_factory=list, description="tables in the order applycal takes them"
    )
    measurement_sets: list[str] = Field(
        default_factory=list, description="MSs the tables apply to; empty means every MS in the package"
    )
