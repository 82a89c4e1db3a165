"""What an operator may set for every run a campaign starts (the campaign's `parameters`): the settings
that change what a run makes or refuses, given once per campaign and carried by each run's job messages."""

from pydantic import BaseModel, ConfigDict, Field

from aperture_contracts.imaging import ProductSizeLimits


class RunParameters(BaseModel):
    """A campaign's parameters. Unknown names are refused, so a misspelt parameter is an error at submission
    and not a campaign run with the defaults."""

    model_config = ConfigDict(extra="forbid")

    size_limits: ProductSizeLimits | None = Field(
        None,
        description="the size cascade's limits for every image of the run (default: the ALMA pipeline's 40 / 60 / "
        "500 GB); an image still over the hard limit fails its job as product_too_large",
    )
