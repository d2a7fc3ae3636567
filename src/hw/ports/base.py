"""What every port's configuration table shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PortConfig(BaseModel):
    """One ``[port]`` table of the configuration file; unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
