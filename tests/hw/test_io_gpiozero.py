"""The gpiozero adapter on a host without GPIO: one clear error, and no stray warnings."""

from __future__ import annotations

import warnings

import pytest

from hw.errors import AdapterUnavailable
from hw.ports.io import IoConfig
from hw.real.io import open_gpiozero_io

pytestmark = pytest.mark.real


@pytest.fixture
def no_gpio() -> None:
    try:
        io = open_gpiozero_io(IoConfig(adapter="gpiozero"))
    except AdapterUnavailable:
        return
    io.close()
    pytest.skip("this host has GPIO: the no-GPIO error cannot happen here")


@pytest.mark.usefixtures("no_gpio")
def test_no_gpio_is_unavailable_and_points_to_the_sim() -> None:
    with pytest.raises(AdapterUnavailable) as raised:
        open_gpiozero_io(IoConfig(adapter="gpiozero"))
    message = str(raised.value)
    assert message.startswith("no GPIO: ")
    assert 'use adapter = "sim"' in message
    assert "lgpio" in message  # why each pin factory could not load
    assert "\n" not in message


@pytest.mark.usefixtures("no_gpio")
def test_gpiozeros_fallback_warnings_do_not_escape() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AdapterUnavailable):
            open_gpiozero_io(IoConfig(adapter="gpiozero"))
    assert [str(w.message) for w in caught] == []
