"""QA scores, in the ALMA pipeline's convention."""

from collections.abc import Iterable
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
        return band_for(self.score)


def band_for(score: float) -> QABand:
    """The ALMA colour band of a score in [0, 1]."""
    if score <= 0.33:
        return QABand.ERROR
    if score <= 0.66:
        return QABand.WARNING
    if score <= 0.90:
        return QABand.BELOW_STANDARD
    return QABand.GOOD


def lowest_score(scores: Iterable[QAScore]) -> QAScore | None:
    """The worst score (ALMA's convention for a summary: one bad image is not averaged away)."""
    return min(scores, key=lambda score: score.score, default=None)
