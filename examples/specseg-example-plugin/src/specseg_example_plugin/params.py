"""The parameters of ``example_tiny`` (torch-free: ``specseg validate`` imports this module)."""

from pydantic import BaseModel, ConfigDict, Field


class TinyParams(BaseModel):
    """``encoder.params`` of the ``example_tiny`` encoder."""

    model_config = ConfigDict(extra="forbid", strict=True)

    width: int = Field(16, ge=1, le=512, description="Channels of the first stage; each later stage doubles them (up to 8x).")
