"""A dock peer whose tool is missing is reported as missing, never as a number."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from bench.dock_peers import start_rclone
from bench.peers import NoPeer


def test_without_rclone_on_the_path_the_rclone_peer_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # the environment, not our code
    with ExitStack() as stack:
        peer = start_rclone(stack, tmp_path / "rclone")
    assert isinstance(peer, NoPeer)
    assert peer.reason == "rclone is not installed: run 'make bench-deps' as root (apt-get)"
