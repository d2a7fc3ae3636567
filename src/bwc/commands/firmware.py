"""``bwc firmware`` and ``bwc profile``: the release side of signed updates.

``build`` packs a folder into an unsigned bundle, ``sign`` signs it with the agency release key
(``bwc keys generate --role release``), ``verify`` prints every check a camera would run. Exit 0
when all hold, 1 naming the failed check, 2 for unusable input. See docs/formats/firmware-bundle.md
and docs/formats/profile.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

from bwc.errors import CliError
from custody.report import Report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_firmware(sub)
    _register_profile(sub)


def _register_firmware(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("firmware", help="build, sign and verify firmware bundles")
    fw_sub = parser.add_subparsers(dest="firmware_command", metavar="COMMAND", required=True)
    build = fw_sub.add_parser("build", help="pack a folder into an unsigned firmware bundle")
    build.add_argument("--version", required=True, metavar="V", help="MAJOR.MINOR.PATCH")
    build.add_argument("--target", required=True, metavar="T", help="hardware, e.g. rpi-zero2w")
    build.add_argument(
        "--min-version", required=True, metavar="M", help="oldest version it may replace"
    )
    build.add_argument("--notes", required=True, type=Path, metavar="FILE", help="release notes")
    build.add_argument("--out", required=True, type=Path, metavar="BUNDLE")
    build.add_argument("folder", type=Path, metavar="FOLDER")
    build.set_defaults(handler=run_build)
    sign = fw_sub.add_parser("sign", help="sign a bundle in place with the release key")
    sign.add_argument("--key", required=True, type=Path, metavar="PEM", help="release.key.pem")
    sign.add_argument("bundle", type=Path, metavar="BUNDLE")
    sign.set_defaults(handler=run_sign)
    verify = fw_sub.add_parser("verify", help="run every check a camera runs before installing")
    _add_trusted_keys(verify)
    verify.add_argument("--target", metavar="T", help="also check the bundle is for this hardware")
    verify.add_argument("--current", metavar="V", help="also check it may replace this version")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE")
    verify.set_defaults(handler=run_verify)


def _register_profile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("profile", help="sign and verify configuration profiles")
    pr_sub = parser.add_subparsers(dest="profile_command", metavar="COMMAND", required=True)
    sign = pr_sub.add_parser(
        "sign",
        help="validate and sign a profile in place",
        description="PROFILE is a JSON object with name, profile_version and settings "
        "(or a signed profile to re-sign); it is replaced by the signed profile.",
    )
    sign.add_argument("--key", required=True, type=Path, metavar="PEM", help="release.key.pem")
    sign.add_argument("profile", type=Path, metavar="PROFILE")
    sign.set_defaults(handler=run_profile_sign)
    verify = pr_sub.add_parser("verify", help="check a profile's signature and settings")
    _add_trusted_keys(verify)
    verify.add_argument("profile", type=Path, metavar="PROFILE")
    verify.set_defaults(handler=run_profile_verify)


def _add_trusted_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", required=True, type=Path, action="append", metavar="PEM",
        help="trusted release public key (repeat for several)",
    )  # fmt: skip


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise CliError(f"{what} {path} is larger than {limit} bytes")
    return data


def run_build(args: argparse.Namespace) -> int:
    from custody.firmware_bundle import MAX_NOTES_CHARS, build_bundle

    try:
        notes = _read(args.notes, MAX_NOTES_CHARS, "notes file").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"notes file {args.notes} is not UTF-8 text: save it as UTF-8") from exc
    header = build_bundle(
        args.folder, args.out, firmware_version=args.version, target=args.target,
        min_version=args.min_version, notes=notes, created_at_ns=time.time_ns(),
    )  # fmt: skip
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"built {args.out}: firmware {header.firmware_version} for {header.target}, "
        f"{len(header.files)} files, {header.payload_size} bytes "
        "(unsigned: run 'bwc firmware sign')"
    )
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from custody.firmware_bundle import sign_bundle
    from custody.keys import load_signing_key

    header = sign_bundle(args.bundle, load_signing_key(args.key))
    Console(highlight=False, soft_wrap=True).print(
        f"signed {args.bundle}: firmware {header.firmware_version}, "
        f"release key {header.release_key_id}"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from custody.firmware_bundle import verify_bundle
    from custody.keys import load_verify_key

    trusted = [load_verify_key(path) for path in args.key]
    report = verify_bundle(args.bundle, trusted, target=args.target, current_version=args.current)
    return _show(report, str(args.bundle))


def run_profile_sign(args: argparse.Namespace) -> int:
    from custody.keys import load_signing_key, write_atomic
    from custody.profile import MAX_PROFILE_BYTES, sign_profile

    key = load_signing_key(args.key)
    draft = _read(args.profile, MAX_PROFILE_BYTES, "profile")
    signed = sign_profile(draft, key, created_at_ns=time.time_ns())
    write_atomic(args.profile, signed.to_bytes(), mode=0o644, overwrite=True)
    Console(highlight=False, soft_wrap=True).print(
        f"signed {args.profile}: profile {signed.name!r} version {signed.profile_version}, "
        f"id {signed.profile_id}"
    )
    return 0


def run_profile_verify(args: argparse.Namespace) -> int:
    from custody.keys import load_verify_key
    from custody.profile import MAX_PROFILE_BYTES, verify_profile

    trusted = [load_verify_key(path) for path in args.key]
    report = verify_profile(_read(args.profile, MAX_PROFILE_BYTES, "profile"), trusted)
    return _show(report, str(args.profile))


def _show(report: Report, name: str) -> int:
    from bwc.commands.verify import render

    console = Console(highlight=False, soft_wrap=True)
    console.print(render(report))
    first = report.first_failure
    if first is not None or not report.ok:
        reason = first.describe() if first else "nothing was checked"
        console.print(Text(f"FAILED: {report.subject}: {reason}", style="red"))
        return 1
    console.print(Text(f"OK: {name}: every check holds", style="green"))
    return 0
