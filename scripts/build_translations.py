"""Write translations/en.json from strings.json, resolving HA's common ``[%key:...]`` references.

Home Assistant core does this in its build; a custom integration must ship the result.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

INTEGRATION = Path(__file__).parents[1] / "custom_components" / "fleet_metrics"
COMMON = {
    "common::config_flow::data::url": "URL",
    "common::config_flow::data::host": "Host",
    "common::config_flow::data::port": "Port",
    "common::config_flow::data::username": "Username",
    "common::config_flow::data::password": "Password",
    "common::config_flow::title::reauth": "Authentication expired",
    "common::config_flow::error::cannot_connect": "Failed to connect",
    "common::config_flow::error::invalid_auth": "Invalid authentication",
    "common::config_flow::abort::already_configured_device": "Device is already configured",
    "common::config_flow::abort::reauth_successful": "Re-authentication was successful",
    "common::config_flow::abort::reconfigure_successful": "Re-configuration was successful",
}


def render() -> str:
    text = (INTEGRATION / "strings.json").read_text(encoding="utf-8")
    text = re.sub(r"\[%key:([^%]+)%\]", lambda m: COMMON[m.group(1)], text)
    json.loads(text)
    return text


if __name__ == "__main__":
    (INTEGRATION / "translations" / "en.json").write_text(render(), encoding="utf-8")
    sys.exit(0)
