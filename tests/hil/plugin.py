"""The HIL pytest plugin's hooks: ``--rig``, the ``needs`` marker, a pre-flight check, a summary.

Registered for the whole suite from tests/conftest.py (``pytest_plugins``), so ``--rig`` parses
wherever pytest starts and the summary prints in the xdist controller too; the fixtures live in
tests/hil/conftest.py, so they reach only the HIL tests. Like labgrid's ``--lg-env``: the rig is
built once per session, and a test asks for capabilities, never for hardware classes.

Each test marked ``needs`` is a HIL test: it carries user properties (``hil_rig``, added at
setup, and the figures it records with ``record_property``), which xdist ships back to the
controller with the test's reports: the summary and the Markdown report are built from those
reports alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hil.probes import missing_resources
from tests.hil.report import ResultRow, write_markdown
from tests.hil.rig_file import CAPABILITIES, Rig, RigError, load_rig_file, sim_rig_file

RIG_KEY = pytest.StashKey[Rig]()
HIL_PROPERTY = "hil_rig"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop rig")
    group.addoption(
        "--rig", default="sim", metavar="sim|FILE.toml",
        help="the HIL rig: 'sim' (default) or a bench rig file (docs/hil.md)",
    )  # fmt: skip
    group.addoption(
        "--hil-report", default=None, metavar="FILE.md",
        help="write a Markdown report of the HIL tests run",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*capabilities): skip unless the HIL rig offers every capability named"
    )
    rig = config.stash[RIG_KEY] = build_rig(str(config.getoption("rig")))
    config.pluginmanager.register(HilSession(config, rig), "hil-session")


def build_rig(source: str) -> Rig:
    """The sim rig, or a bench file's rig with every resource present; else a usage error."""
    if source == "sim":
        return Rig("sim", sim_rig_file())
    path = Path(source)
    try:
        rig_file = load_rig_file(path)
    except RigError as exc:
        raise pytest.UsageError(
            f"rig file {path} is not usable:\n  " + "\n  ".join(exc.problems)
        ) from None
    if rig_file.kind == "sim":
        return Rig(str(path), rig_file)
    missing = missing_resources(rig_file)
    if missing:
        raise pytest.UsageError(
            f"rig {path} ({rig_file.name}): {len(missing)} resource(s) missing:\n  "
            + "\n  ".join(missing)
        )
    return Rig(str(path), rig_file, link="the camera's USB network link (CDC-NCM)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("needs")
    if marker is None:
        return
    rig = item.config.stash[RIG_KEY]
    item.user_properties.append((HIL_PROPERTY, rig.source))
    unknown = [name for name in marker.args if name not in CAPABILITIES]
    if unknown:  # a typo would otherwise skip the test on every rig, forever
        pytest.fail(f"needs() names unknown capabilities {unknown}: known are "
                    f"{', '.join(CAPABILITIES)}", pytrace=False)  # fmt: skip
    lacking = [name for name in marker.args if name not in rig.capabilities]
    if lacking:
        pytest.skip(f"rig {rig.source!r} lacks {', '.join(lacking)}")


class HilSession:
    """Collects the HIL tests' reports (in the xdist controller too) and prints the summary."""

    def __init__(self, config: pytest.Config, rig: Rig) -> None:
        self._config = config
        self.rig = rig
        self.rows: dict[str, ResultRow] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if HIL_PROPERTY not in props:
            return
        row = self.rows.setdefault(report.nodeid, ResultRow(report.nodeid))
        row.properties.update({k: str(v) for k, v in props.items() if k != HIL_PROPERTY})
        row.duration_s += report.duration
        if report.skipped:
            row.outcome = "skipped"
            row.reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        elif report.failed:
            row.outcome = "failed" if report.when == "call" else f"error ({report.when})"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.rows:
            return
        tr, rig = terminalreporter, self.rig
        tr.section(f"HIL rig {rig.source} ({rig.kind})")
        for resource, played_by in rig.resources():
            tr.write_line(f"  {resource:<15} {played_by}")
        tr.write_line("")
        for row in sorted(self.rows.values(), key=lambda r: r.nodeid):
            tr.write_line(f"  {row.outcome:<8} {row.name:<58} {row.figures()}")
        path = self._config.getoption("hil_report")
        if path:
            write_markdown(Path(str(path)), rig, list(self.rows.values()))
            tr.write_line(f"report: {path}")
