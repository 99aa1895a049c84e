"""pytest plugin: import the integration's core without its Home Assistant glue.

The core tests import ``custom_components.fleet_metrics.core``; importing that normally runs
``custom_components/fleet_metrics/__init__.py``, which imports Home Assistant. Registering the
two parent packages as bare packages over the same folders lets Python load the core files
themselves and nothing above them, so the core is tested as it is, in a venv with no HA.
Loaded by scripts/compat-core-tests.sh with ``-p ci.compat.ha_free``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bare_package(name: str, folder: Path) -> None:
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    package.__file__ = None
    sys.modules[name] = package


_bare_package("custom_components", ROOT / "custom_components")
_bare_package("custom_components.fleet_metrics", ROOT / "custom_components" / "fleet_metrics")
