"""Shared test setup.

The Home Assistant harness puts its own ``custom_components`` on ``sys.path`` when the
``hass`` fixture starts; importing ours first makes it the one that is found.
"""

from __future__ import annotations

import pytest

import custom_components.fleet_metrics  # noqa: F401 - see the module docstring

pytest_plugins = [
    "tests.hypothesis_profiles",
    "tests.opendtu_fake",
    "tests.mosquitto",
    "tests.influxd",
    "tests.websocket_feed",
    "tests.standalone.runner_process",
]


@pytest.fixture(autouse=True)
def _real_loopback(socket_enabled: None) -> None:
    """Tests talk to real servers (the OpenDTU fake, Mosquitto, the runner) on loopback.

    The HA harness forbids creating sockets at all; opting in here keeps its guard that
    only 127.0.0.1 may be connected to.
    """


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load our integration in every test that starts ``hass``."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")
