"""QA scores, in the ALMA pipeline's convention."""

from enum import StrEnum

from pydantic import BaseModel, Field


class QABand(StrEnum):
    """The ALMA pipeline's colour bands for a score."""

    ERROR = "red"  # <= 0.33
    WARNING = "yellow"  # <= 0.66
    BELOW_STANDARD = "blue"  # <= 0.90
    GOOD = "green"  # > 0.90


class QAMetric(BaseModel):
    name: str
    value: float | None
    unit: str = ""


class QAScore(BaseModel):
    """A score in [0, 1] with what it is about and the metric behind it."""

    score: float = Field(ge=0.0, le=1.0)
    message: str
    metric: QAMetric
    applies_to: str = Field("", description="e.g. an MS name, a field, an spw")

    @property
    def band(self) -> QABand:
        if self.score <= 0.33:
            return QABand.ERROR
        if self.score <= 0.66:
            return QABand.WARNING
        if self.score <= 0.90:
            return QABand.BELOW_STANDARD
        return QABand.GOOD
