"""The configuration file: one TOML document, loaded once at the entry point and passed in.

Each hardware port is a top-level table (``[camera] adapter = "sim"``); later packages add their
own tables (``[device]``, ``[evidence]``, ``[dock]``). With no file every port uses its sim adapter.
Command-line flags that mirror a key (``bwc evidence serve --port``) win over the file: they are
merged into the raw document before it is validated, so a bad value reads the same either way.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bwc.errors import CliError
from device.config import DeviceConfig
from dock.config import DockConfig
from evidence.config import EvidenceConfig
from hw.config import HwConfig

#: tables that belong to the packages above hw/, by name
PACKAGE_TABLES = ("device", "evidence", "dock")
#: the evidence store's data folder when neither ``[evidence] data_dir`` nor a flag names one
DEFAULT_EVIDENCE_DIR = Path("bwc-evidence")
#: the dock agent's data folder when ``[dock] data_dir`` does not name one
DEFAULT_DOCK_DIR = Path("bwc-dock")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hw: HwConfig = HwConfig()
    device: DeviceConfig = DeviceConfig()
    evidence: EvidenceConfig = EvidenceConfig(data_dir=DEFAULT_EVIDENCE_DIR)
    dock: DockConfig = DockConfig(data_dir=DEFAULT_DOCK_DIR)


def load_config(
    path: Path | None, *, overrides: Mapping[str, Mapping[str, object]] | None = None
) -> Config:
    """Read and validate ``path``; every problem becomes one ``CliError`` line naming the key.

    ``overrides`` are command-line values by table and key; they replace the file's.
    """
    raw = with_overrides(read_config(path), overrides or {})
    return parse_config(raw, source=str(path) if path is not None else "command line")


def read_config(path: Path | None) -> dict[str, Any]:
    """The TOML document at ``path`` as parsed, not yet validated (empty without a file)."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"config file {path} does not exist: check the --config path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path}: not valid TOML ({exc}): fix the syntax") from exc
    return raw


def with_overrides(
    raw: Mapping[str, Any], overrides: Mapping[str, Mapping[str, object]]
) -> dict[str, Any]:
    """``raw`` with each table's keys replaced by ``overrides`` (flags win over the file)."""
    merged = dict(raw)
    for table, values in overrides.items():
        current = merged.get(table, {})
        # A table that is not a table (``evidence = 3``) is left for validation to name.
        merged[table] = {**current, **values} if isinstance(current, dict) else current
    return merged


def parse_config(raw: dict[str, Any], *, source: str = "config") -> Config:
    hw_tables = {k: v for k, v in raw.items() if k in HwConfig.model_fields}
    package_tables = {k: v for k, v in raw.items() if k in PACKAGE_TABLES}
    unknown = sorted(set(raw) - set(hw_tables) - set(package_tables))
    if unknown:
        known = ", ".join(sorted([*HwConfig.model_fields, *PACKAGE_TABLES]))
        raise CliError(f"{source}: unknown table [{unknown[0]}]; known tables: {known}")
    evidence = package_tables.get("evidence")
    if isinstance(evidence, dict):
        package_tables["evidence"] = {"data_dir": DEFAULT_EVIDENCE_DIR, **evidence}
    dock = package_tables.get("dock")
    if isinstance(dock, dict):
        package_tables["dock"] = {"data_dir": DEFAULT_DOCK_DIR, **dock}
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
