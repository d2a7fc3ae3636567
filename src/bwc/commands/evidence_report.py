"""``bwc evidence report --year Y``: the seed policy's annual counts, as tables or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bwc.commands.options import add_config_option
from bwc.errors import CliError
from evidence.errors import EvidenceError, VerificationFailed
from evidence.report import FIRST_YEAR, LAST_YEAR, AnnualReport, Volume


class AuditLogAltered(CliError):
    """The audit log does not verify: a check ran and failed, so exit 1 (not a usage error)."""

    exit_code = 1


def add_parser(
    evidence_sub: argparse._SubParsersAction[argparse.ArgumentParser], default_data_dir: Path
) -> None:
    report = evidence_sub.add_parser(
        "report",
        help="the annual report: clips stored, purged and held, every access, refusals",
        description="Verifies the audit log's hash chain, then counts one calendar year (UTC): "
        "clips stored by month and retention category, clips purged by category and rule, "
        "legal holds placed, released and active at year end, category changes, every access "
        "by kind and by user and role, and refused requests. Generating the report is itself "
        "an audit record. Exits 1 naming the first altered record if the log does not verify.",
    )
    add_config_option(report)
    report.add_argument("--year", required=True, metavar="YYYY", help="the calendar year (UTC)")
    report.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help=f"the store's data folder (default: [evidence] data_dir, else ./{default_data_dir})",
    )  # fmt: skip
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from bwc.commands.evidence import _os_user
    from bwc.commands.evidence_serve import load_store_settings
    from custody.errors import KeyFileError
    from custody.keys import load_signing_key
    from evidence.report import publish
    from evidence.store import open_metadata

    year = _year(args.year)
    settings = load_store_settings(getattr(args, "config", None), {"data_dir": args.data_dir})
    cfg = settings.config
    if not cfg.has_local_store:
        raise CliError(
            f"no evidence store in {cfg.data_dir}: pass the --data-dir that 'bwc evidence serve' "
            "uses"
        )
    try:
        key = load_signing_key(cfg.receipt_key_path)
    except KeyFileError as exc:
        raise CliError(f"receipt key: {exc}") from exc
    try:
        metadata = open_metadata(cfg)
        try:
            report = publish(metadata, key, year, f"admin:{_os_user()}")
        finally:
            metadata.close()
    except VerificationFailed as exc:
        raise AuditLogAltered(str(exc)) from exc
    except EvidenceError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        Console(highlight=False, soft_wrap=True).print(render(report))
    return 0


def _year(text: str) -> int:
    if not text.isdigit() or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        raise CliError(f"--year {text!r} is not a year: give one from {FIRST_YEAR} to {LAST_YEAR}")
    return int(text)


def render(report: AnnualReport) -> Group:
    return Group(
        *_heading(report),
        _volumes("clips stored by month", "month", report.stored_by_month, report.stored),
        _volumes(
            "clips stored in the year by retention category (at year end, or when purged)",
            "category",
            report.stored_by_category,
            report.stored,
        ),
        _purges(report),
        _holds(report),
        _moves(report),
        _accesses(report),
        _actors(report),
        _counts("accesses by role", "role", report.accesses_by_role),
        _counts("refused requests by action", "action", report.refused_by_action),
        _counts("refused requests by user", "user", report.refused_by_actor),
        _counts("access denied (401 credentials, 403 role)", "status", report.access_denied),
        *(Text(f"note: {note}", style="yellow") for note in report.notes),
    )


def _heading(report: AnnualReport) -> list[Text]:
    chain = report.audit
    signed = (
        "no signed checkpoint yet"
        if chain.last_checkpoint_seq is None
        else f"last signed checkpoint at seq {chain.last_checkpoint_seq}, "
        f"{chain.unsigned_after_checkpoint} record(s) after it chained but not yet signed"
    )
    lines = [
        Text(f"Annual report {report.year}", style="bold"),
        Text(
            f"period: {report.period_start} to {report.period_end} (UTC year boundaries, end "
            "exclusive)"
        ),
        Text(
            f"audit log verified: records 0..{chain.records - 1} chained ({signed})",
            style="green",
        ),
        Text(f"generated {report.generated_at} by {report.generated_by}"),
        Text(
            f"in store at year end: {report.in_store_at_year_end.clips} clip(s), "
            f"{report.in_store_at_year_end.bytes:,} bytes"
        ),
    ]
    if not report.complete:
        lines.append(Text(f"the year is not over: counts up to {report.generated_at}", "yellow"))
    return lines


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        # Names are folded onto a second line, never cut: the report must name every user.
        table.add_column(column, justify="left" if index == 0 else "right", overflow="fold")
    return table


def _volumes(title: str, label: str, rows: dict[str, Volume], total: Volume) -> Table:
    table = _table(title, label, "clips", "bytes")
    for name, volume in rows.items():
        table.add_row(name, str(volume.clips), f"{volume.bytes:,}")
    table.add_row(Text("total", style="bold"), str(total.clips), f"{total.bytes:,}")
    return table


def _purges(report: AnnualReport) -> Table:
    table = _table("clips purged by retention category and rule", "category", "rule", "clips")
    table.columns[1].justify = "left"
    table.add_column("bytes", justify="right")
    for p in report.purged_by_rule:
        table.add_row(p.category, p.rule, str(p.clips), f"{p.bytes:,}")
    table.add_row(
        Text("total", style="bold"), "", str(report.purged.clips), f"{report.purged.bytes:,}"
    )
    return table


def _holds(report: AnnualReport) -> Table:
    table = _table("legal holds", "placed", "released", "active at year end")
    table.columns[0].justify = "right"
    table.add_row(
        str(report.holds_placed), str(report.holds_released), str(report.holds_active_at_year_end)
    )
    return table


def _moves(report: AnnualReport) -> Table:
    table = _table("retention category changes", "from", "to", "changes")
    table.columns[1].justify = "left"
    for move in report.category_changes:
        table.add_row(move.previous or "(none)", move.category, str(move.changes))
    total = sum(m.changes for m in report.category_changes)
    table.add_row(Text("total", style="bold"), "", str(total))
    return table


def _accesses(report: AnnualReport) -> Table:
    table = _table("accesses by kind", "kind", "requests", "clips")
    for access in report.accesses:
        table.add_row(access.kind, str(access.requests), str(access.clips))
    table.add_row(Text("total", style="bold"), str(sum(a.requests for a in report.accesses)), "")
    return table


def _actors(report: AnnualReport) -> Table:
    kinds = [a.kind for a in report.accesses]
    table = _table("accesses by user", "user", "role", *kinds, "total")
    table.columns[1].justify = "left"
    for actor in report.accesses_by_actor:
        counts = [str(actor.by_kind.get(kind, 0)) for kind in kinds]
        table.add_row(actor.actor, actor.role, *counts, str(actor.total))
    return table


def _counts(title: str, label: str, counts: dict[str, int]) -> Table:
    table = _table(title, label, "count")
    for name, count in counts.items():
        table.add_row(name, str(count))
    table.add_row(Text("total", style="bold"), str(sum(counts.values())))
    return table
