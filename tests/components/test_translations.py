"""Every string the integration uses is translated, and en.json is strings.json rendered."""

from __future__ import annotations

import json
import re

from scripts.build_translations import INTEGRATION, render

STRINGS = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))


def test_en_json_is_generated_from_strings_json() -> None:
    shipped = (INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8")
    assert shipped == render(), "run: python scripts/build_translations.py"


def _python_sources() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8")
        for path in INTEGRATION.rglob("*.py")
        if "core" not in path.relative_to(INTEGRATION).parts
    )


def test_every_translation_key_in_code_has_a_string() -> None:
    code = _python_sources()
    keys = set(re.findall(r'translation_key="([a-z_]+)"', code))
    keys |= {f"string_{k}" for k in ("power", "voltage", "current", "yield_day", "yield_total")}
    described = re.findall(r'_(?:dtu|inverter)\(\s*"([a-z_]+)"', code)
    keys |= set(described)
    entity = STRINGS["entity"]
    known = set(entity["sensor"]) | set(entity["binary_sensor"]) | set(STRINGS["exceptions"])
    assert keys - known == set()
    assert len(described) == 20


def test_every_form_error_and_abort_reason_has_a_string() -> None:
    code = _python_sources()
    errors = set(re.findall(r'errors\[[^\]]+\] = "([a-z_]+)"', code))
    reasons = set(re.findall(r'reason="([a-z_]+)"', code)) | {"already_configured"}
    assert errors and errors <= set(STRINGS["config"]["error"])
    assert reasons <= set(STRINGS["config"]["abort"])
