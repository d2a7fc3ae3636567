"""``bwc verify PATH``: check a clip folder, manifest, receipt or audit log on its own.

Prints every check it ran. Exit 0 only when all hold, 1 when one failed (the summary names the
segment and the check), 2 when the input cannot be used (missing file, unknown format, no key).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bwc.errors import CliError
from custody.audit import verify_audit
from custody.clip import MANIFEST_NAME, RECEIPT_NAME, FolderSegments, decrypt_segments, read_limited
from custody.errors import CustodyError
from custody.keys import key_id, load_agency_private_key, load_public_key, load_verify_key
from custody.manifest import MAX_MANIFEST_BYTES, parse_manifest
from custody.receipt import MAX_RECEIPT_BYTES, verify_receipt
from custody.report import Report
from custody.verify import verify_clip, verify_manifest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "verify",
        help="verify a clip folder, manifest, receipt or audit log",
        description="Verify integrity and signatures without trusting the vendor. PATH is a clip "
        f"folder ({MANIFEST_NAME} and seg-NNNNNN.bwcs files), a manifest, a receipt or an "
        "audit log. Exit 0: everything holds; 1: a check failed; 2: unusable input.",
    )
    parser.add_argument("path", type=Path, metavar="PATH")
    key = "public key file, or a folder of trusted public keys (*.pub.pem)"
    parser.add_argument("--device-key", type=Path, metavar="PEM", help=f"device {key}")
    parser.add_argument("--store-key", type=Path, metavar="PEM", help=f"evidence store {key}")
    parser.add_argument("--dock-key", type=Path, metavar="PEM", help=f"dock {key}")
    parser.add_argument(
        "--agency-key", type=Path, metavar="PEM",
        help="agency X25519 private key: also decrypt and check plaintext hashes",
    )  # fmt: skip
    parser.add_argument(
        "--manifest", type=Path, metavar="FILE", help="with a receipt: the manifest it must match"
    )
    parser.add_argument(
        "--export", type=Path, metavar="OUT.mp4",
        help="with a clip folder and --agency-key: write a playable MP4 once everything holds",
    )  # fmt: skip
    parser.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    kind = detect(args.path)
    if args.export is not None and (kind != "clip" or args.agency_key is None):
        raise CliError("--export needs a clip folder and --agency-key to decrypt it")
    console = Console(highlight=False, soft_wrap=True)
    with console.status(f"verifying {args.path}..."):
        reports = {
            "clip": _clip, "manifest": _manifest, "receipt": _receipt, "audit": _audit,
        }[kind](args)  # fmt: skip
    for report in reports:
        console.print(render(report))
    failed = [report for report in reports if not report.ok]
    if failed:
        first = failed[0].first_failure
        reason = first.describe() if first else "nothing was checked"
        console.print(Text(f"FAILED: {failed[0].subject}: {reason}", style="red"))
        if args.export is not None:
            console.print(f"not exported: {args.export} was not written")
        return 1
    console.print(Text(f"OK: {args.path} ({kind}): every check holds", style="green"))
    if args.export is not None:
        _export(args, console)
    return 0


def detect(path: Path) -> str:
    """What PATH is: a clip folder, a manifest, a receipt or an audit log."""
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise CliError(f"{path} has no {MANIFEST_NAME}: it is not a clip folder")
        return "clip"
    if not path.is_file():
        raise CliError(f"{path} does not exist")
    head = read_limited(path, 64 * 1024)
    obj = _json_object(head.split(b"\n", 1)[0]) or _json_object(head)  # JSON Lines or one object
    if obj is not None:
        if obj.get("format") == "bwc-manifest":
            return "manifest"
        if obj.get("format") == "bwc-receipt":
            return "receipt"
        if obj.get("event") == "audit.start":
            return "audit"
    # a damaged file is still what its name says, and then its checks fail rather than exit 2
    by_name = {MANIFEST_NAME: "manifest", RECEIPT_NAME: "receipt", "audit.jsonl": "audit"}
    if path.name in by_name:
        return by_name[path.name]
    raise CliError(f"{path} is not a clip folder, manifest, receipt or audit log")


def _json_object(data: bytes) -> dict[str, object] | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _keys(path: Path | None, option: str) -> list[Ed25519PublicKey]:
    if path is None:
        return []
    if path.is_dir():
        # a keys folder may hold every role's files: take the Ed25519 public keys in it
        found = [load_public_key(p) for p in sorted(path.glob("*.pub.pem"))]
        keys = [k for k in found if isinstance(k, Ed25519PublicKey)]
        if not keys:
            raise CliError(f"{option} {path}: the folder holds no Ed25519 public key (*.pub.pem)")
        return keys
    return [load_verify_key(path)]


def _trusted(path: Path | None, option: str, wanted: str | None) -> Ed25519PublicKey:
    """The trusted key named by ``wanted`` (key id) if present, else the first one given."""
    keys = _keys(path, option)
    if not keys:
        raise CliError(f"this needs the signer's public key: pass {option} FILE")
    return next((k for k in keys if key_id(k) == wanted), keys[0])


def _header_key_id(manifest: bytes) -> str | None:
    try:
        return parse_manifest(manifest).header.device_key_id
    except CustodyError:  # the verifier reports a bad manifest; here only a hint is wanted
        return None


def _clip(args: argparse.Namespace) -> list[Report]:
    manifest = read_limited(args.path / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    device = _trusted(args.device_key, "--device-key", _header_key_id(manifest))
    agency = load_agency_private_key(args.agency_key) if args.agency_key else None
    reports = [verify_clip(FolderSegments(args.path), manifest, device, agency)]
    receipt = args.path / RECEIPT_NAME
    if receipt.is_file() and args.store_key is not None:
        store = _trusted(args.store_key, "--store-key", None)
        reports.append(verify_receipt(read_limited(receipt, MAX_RECEIPT_BYTES), store, manifest))
    return reports


def _manifest(args: argparse.Namespace) -> list[Report]:
    manifest = read_limited(args.path, MAX_MANIFEST_BYTES)
    device = _trusted(args.device_key, "--device-key", _header_key_id(manifest))
    return [verify_manifest(manifest, device)]


def _receipt(args: argparse.Namespace) -> list[Report]:
    data = read_limited(args.path, MAX_RECEIPT_BYTES)
    store = _trusted(args.store_key, "--store-key", None)
    manifest = read_limited(args.manifest, MAX_MANIFEST_BYTES) if args.manifest else None
    return [verify_receipt(data, store, manifest)]


def _audit(args: argparse.Namespace) -> list[Report]:
    keys = [
        key
        for option in ("device_key", "store_key", "dock_key")
        for key in _keys(getattr(args, option), f"--{option.replace('_', '-')}")
    ]
    if not keys:
        raise CliError(
            "an audit log needs its signer's key: pass --device-key, --dock-key or --store-key"
        )
    with args.path.open("rb") as log:
        lines = iter(lambda: log.readline(64 * 1024 + 2), b"")
        return [verify_audit(lines, keys)]


def _export(args: argparse.Namespace, console: Console) -> None:
    from custody.export import export_mp4  # PyAV loads only when exporting

    manifest = parse_manifest(read_limited(args.path / MANIFEST_NAME, MAX_MANIFEST_BYTES))
    agency = load_agency_private_key(args.agency_key)
    with console.status(f"exporting {len(manifest.segments)} segments..."):
        plaintexts = decrypt_segments(FolderSegments(args.path), manifest, agency)
        result = export_mp4(plaintexts, args.export)
    console.print(
        f"exported {result.path}: {result.segments} segments, {result.packets} packets, "
        f"{result.duration_s:.1f} s"
    )


def render(report: Report) -> Table:
    table = Table(title=report.subject, title_justify="left")
    table.add_column("check")
    table.add_column("segment", justify="right")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(
            check.name,
            "" if check.segment is None else str(check.segment),
            Text("ok", style="green") if check.ok else Text("FAILED", style="bold red"),
            Text(check.detail),
        )
    return table
