"""Fixtures every test package shares: fresh key pairs for a device and the agency."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

#: the HIL plugin's hooks (--rig, the needs marker, the summary) for every run; docs/hil.md
pytest_plugins = ["tests.hil.plugin"]


@pytest.fixture
def device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def agency_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()
