"""The ``[evidence]`` part of docs/config.example.toml loads, and names every setting there is.

The example runs the embedded store as it stands; its commented-out settings (the scaled
deployment, the agency key) are valid once uncommented. A setting added to the evidence
configuration without a line in the example fails here, so the example cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from bwc.config import load_config
from evidence.config import EvidenceConfig, KmsSettings, RetentionPolicy, S3Settings

EXAMPLE = Path(__file__).parents[2] / "docs" / "config.example.toml"
# The table each model is written as; EvidenceConfig's model-valued fields are tables below it.
TABLES: dict[str, type[BaseModel]] = {
    "evidence": EvidenceConfig,
    "evidence.retention": RetentionPolicy,
    "evidence.s3": S3Settings,
    "evidence.agency_kms": KmsSettings,
}
# Set or commented out: "key = ..." or "# key = ...", "[table]" or "# [table]".
HEADER_RE = re.compile(r"^(?:#\s?)?\[([\w.-]+)\]")
KEY_RE = re.compile(r"^(?:#\s?)?([\w-]+)\s*=")
COMMENTED_OUT_RE = re.compile(r"^#\s?((?:\[[\w.-]+\]|[\w-]+\s*=).*)$")
# Uncommenting it as well would set both agency_key and agency_kms, which is refused.
ALTERNATIVE = "agency_key"


def evidence_lines() -> list[tuple[str, str]]:
    """(table, line) for each line of the ``[evidence]`` tables, set or commented out."""
    table = ""
    found: list[tuple[str, str]] = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if header := HEADER_RE.match(line):
            table = header.group(1)
        if table == "evidence" or table.startswith("evidence."):
            found.append((table, line))
    return found


def named_keys(table: str) -> set[str]:
    return {m.group(1) for t, line in evidence_lines() if t == table if (m := KEY_RE.match(line))}


def uncommented(lines: list[tuple[str, str]]) -> str:
    """The evidence tables with every commented-out setting but ``ALTERNATIVE`` put back."""
    out = []
    for _, line in lines:
        setting = COMMENTED_OUT_RE.match(line)
        key = KEY_RE.match(line)
        if setting is None or (key is not None and key.group(1) == ALTERNATIVE):
            out.append(line)
        else:
            out.append(setting.group(1))
    return "\n".join(out) + "\n"


def test_the_example_runs_the_embedded_store() -> None:
    cfg = load_config(EXAMPLE).evidence
    assert cfg.data_dir == Path("var/bwc-evidence")
    assert (cfg.database_url, cfg.s3, cfg.agency_key, cfg.agency_kms) == (None, None, None, None)


def test_the_example_keeps_an_indefinite_category() -> None:
    retention = load_config(EXAMPLE).evidence.retention
    assert retention.days["homicide"] is None
    assert retention.expires_at_ns("routine", 0) == 14 * 86_400 * 10**9


@pytest.mark.parametrize("table", TABLES)
def test_every_setting_has_a_line_in_the_example(table: str) -> None:
    model = TABLES[table]
    subtables = {name for name in model.model_fields if f"{table}.{name}" in TABLES}
    assert named_keys(table) == set(model.model_fields) - subtables


def test_the_commented_out_settings_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "scaled.toml"
    path.write_text(uncommented(evidence_lines()), encoding="utf-8")
    cfg = load_config(path).evidence
    assert cfg.database_url == "postgresql://bwc@db.agency.example:5432/evidence"
    assert cfg.s3 is not None and cfg.s3.lock_mode == "GOVERNANCE"
    assert cfg.agency_kms is not None and cfg.agency_kms.token_file == Path("/etc/bwc/kms.token")
    assert cfg.receipt_key == Path("var/bwc-evidence/keys/store.key.pem")
