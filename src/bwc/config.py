"""The configuration file: one TOML document, loaded once at the entry point and passed in.

Each hardware port is a top-level table (``[camera] adapter = "sim"``); later packages add their
own tables. With no file every port uses its sim adapter.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bwc.errors import CliError
from device.config import DeviceConfig
from hw.config import HwConfig

#: tables that belong to the packages above hw/, by name
PACKAGE_TABLES = ("device",)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hw: HwConfig = HwConfig()
    device: DeviceConfig = DeviceConfig()


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; every problem becomes one ``CliError`` line naming the key."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"config file {path} does not exist: check the --config path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path}: not valid TOML ({exc}): fix the syntax") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], *, source: str = "config") -> Config:
    hw_tables = {k: v for k, v in raw.items() if k in HwConfig.model_fields}
    package_tables = {k: v for k, v in raw.items() if k in PACKAGE_TABLES}
    unknown = sorted(set(raw) - set(hw_tables) - set(package_tables))
    if unknown:
        known = ", ".join(sorted([*HwConfig.model_fields, *PACKAGE_TABLES]))
        raise CliError(f"{source}: unknown table [{unknown[0]}]; known tables: {known}")
    try:
        return Config(hw=HwConfig.model_validate(hw_tables), **package_tables)
    except ValidationError as exc:
        raise CliError(f"{source}: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem as ``[table] key: what is wrong (got VALUE)``, with a count of the rest."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    where = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]" if loc else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    got = first.get("input")
    text = f"{where}: {message}"
    if first["type"] not in {"missing", "value_error"} and not isinstance(got, dict):
        text += f" (got {got!r})"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text
