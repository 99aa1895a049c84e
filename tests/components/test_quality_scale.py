"""quality_scale.yaml: every rule of Home Assistant's quality scale (as hassfest of 2025.4 names
them) exactly once, in hassfest's format, each exemption and open item with its reason; and for
the rules marked done that the code shows, the code checked: a rule marked done that the code
breaks fails here, whoever breaks it."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import voluptuous as vol
import yaml
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.fleet_metrics as integration
from custom_components.fleet_metrics import config_flow, repairs
from custom_components.fleet_metrics.const import CONF_KIND, CONF_WEBSOCKET, DOMAIN
from tests.mosquitto import Mosquitto
from tests.opendtu_fake import FakeOpenDtu

from .helpers import publish_plug, tasmota_entry, tickrmeter_entry, until
from .test_translations import STRINGS

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "custom_components" / "fleet_metrics"
SNAPSHOTS = sorted((ROOT / "tests" / "components").rglob("snapshots/*.ambr"))

# hassfest's ALL_RULES of 2025.4 (script/hassfest/quality_scale.py): name -> tier. Later
# releases added docs-conditions and docs-triggers (bronze), which 2025.4's hassfest refuses.
BRONZE, SILVER, GOLD, PLATINUM = "bronze", "silver", "gold", "platinum"
RULES: dict[str, str] = {
    "action-setup": BRONZE,
    "appropriate-polling": BRONZE,
    "brands": BRONZE,
    "common-modules": BRONZE,
    "config-flow": BRONZE,
    "config-flow-test-coverage": BRONZE,
    "dependency-transparency": BRONZE,
    "docs-actions": BRONZE,
    "docs-high-level-description": BRONZE,
    "docs-installation-instructions": BRONZE,
    "docs-removal-instructions": BRONZE,
    "entity-event-setup": BRONZE,
    "entity-unique-id": BRONZE,
    "has-entity-name": BRONZE,
    "runtime-data": BRONZE,
    "test-before-configure": BRONZE,
    "test-before-setup": BRONZE,
    "unique-config-entry": BRONZE,
    "action-exceptions": SILVER,
    "config-entry-unloading": SILVER,
    "docs-configuration-parameters": SILVER,
    "docs-installation-parameters": SILVER,
    "entity-unavailable": SILVER,
    "integration-owner": SILVER,
    "log-when-unavailable": SILVER,
    "parallel-updates": SILVER,
    "reauthentication-flow": SILVER,
    "test-coverage": SILVER,
    "devices": GOLD,
    "diagnostics": GOLD,
    "discovery": GOLD,
    "discovery-update-info": GOLD,
    "docs-data-update": GOLD,
    "docs-examples": GOLD,
    "docs-known-limitations": GOLD,
    "docs-supported-devices": GOLD,
    "docs-supported-functions": GOLD,
    "docs-troubleshooting": GOLD,
    "docs-use-cases": GOLD,
    "dynamic-devices": GOLD,
    "entity-category": GOLD,
    "entity-device-class": GOLD,
    "entity-disabled-by-default": GOLD,
    "entity-translations": GOLD,
    "exception-translations": GOLD,
    "icon-translations": GOLD,
    "reconfiguration-flow": GOLD,
    "repair-issues": GOLD,
    "stale-devices": GOLD,
    "async-dependency": PLATINUM,
    "inject-websession": PLATINUM,
    "strict-typing": PLATINUM,
}

# hassfest's schema of a rule's value.
RULE_VALUE = vol.Any(
    vol.In(["todo", "done"]),
    vol.Schema({vol.Required("status"): vol.In(["todo", "done"]), vol.Required("comment"): str}),
    vol.Schema({vol.Required("status"): "exempt", vol.Required("comment"): str}),
)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A rule named twice would silently keep only its last value in a plain load."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    if duplicates := {key for key in keys if keys.count(key) > 1}:
        raise yaml.constructor.ConstructorError(None, None, f"named twice: {duplicates}")
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_rules(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=_UniqueKeyLoader)
    assert set(data) == {"rules"}
    return dict(data["rules"])


RULE_FILE = load_rules((PACKAGE / "quality_scale.yaml").read_text(encoding="utf-8"))


def status(rule: str) -> str:
    value = RULE_FILE[rule]
    return str(value["status"] if isinstance(value, dict) else value)


def comment(rule: str) -> str:
    value = RULE_FILE[rule]
    return str(value.get("comment", "")) if isinstance(value, dict) else ""


def requires_done(rule: str) -> None:
    """A check of the code runs for a rule marked done; a rule not done has nothing to prove."""
    if status(rule) != "done":
        pytest.skip(f"{rule} is {status(rule)}: {comment(rule)}")


# --- the file ------------------------------------------------------------------------------


def test_every_rule_is_named_exactly_once() -> None:
    assert len(RULES) == 52  # 18 bronze, 10 silver, 21 gold, 3 platinum
    assert sorted(RULE_FILE) == sorted(RULES)


def test_a_rule_named_twice_is_caught() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="named twice"):
        load_rules("rules:\n  brands: done\n  brands: todo\n")


def test_each_value_is_what_hassfest_accepts() -> None:
    for rule, value in RULE_FILE.items():
        RULE_VALUE(value)  # raises for a status or key hassfest refuses
        assert status(rule) in {"done", "todo", "exempt"}, rule


def test_each_exemption_and_open_item_says_why() -> None:
    for rule in RULES:
        if status(rule) in {"exempt", "todo"}:
            assert len(comment(rule).split()) >= 5, f"{rule}: {status(rule)} without a reason"


def test_the_file_lists_the_rules_tier_by_tier() -> None:
    """Read top to bottom, the tiers do not mix: a reader sees how far each tier is."""
    tiers = [RULES[rule] for rule in RULE_FILE]
    order = [BRONZE, SILVER, GOLD, PLATINUM]
    assert tiers == sorted(tiers, key=order.index)


# --- the code, for the rules marked done -----------------------------------------------------


def integration_modules() -> Iterator[ModuleType]:
    """Every module of the integration but the core (which knows nothing of HA)."""
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix=f"{integration.__name__}."):
        if ".core" not in info.name:
            yield importlib.import_module(info.name)


def integration_sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for path in PACKAGE.rglob("*.py")
        if "core" not in path.relative_to(PACKAGE).parts
    }


def entity_classes() -> list[type[Entity]]:
    found = {
        cls
        for module in integration_modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Entity) and cls.__module__.startswith(integration.__name__)
    }
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def class_default(cls: type, attribute: str) -> object:
    """An ``_attr_`` default as the class sets it (HA's entity metaclass keeps it under a
    second name and puts a property in its place)."""
    for klass in cls.__mro__:
        for name in (f"_{attribute}", attribute):
            value = vars(klass).get(name, property())
            if not isinstance(value, property):
                return value
    return None


def test_no_actions_for_the_rules_exempt_for_having_none() -> None:
    exempt = [
        r for r in ("action-setup", "docs-actions", "action-exceptions") if status(r) == "exempt"
    ]
    if not exempt:
        pytest.skip("no rule is exempt for having no actions")
    assert not (PACKAGE / "services.yaml").exists()
    for path, text in integration_sources().items():
        assert "services.async_register" not in text, path
        assert "async_register_entity_service" not in text, path


def test_parallel_updates_in_every_platform_module() -> None:
    requires_done("parallel-updates")
    assert integration.PLATFORMS
    for platform in integration.PLATFORMS:
        module = importlib.import_module(f"{integration.__name__}.{platform.value}")
        assert isinstance(getattr(module, "PARALLEL_UPDATES", None), int), platform
    # A platform module HA would load that the entry does not forward is still a platform.
    for platform in Platform:
        if (PACKAGE / f"{platform.value}.py").exists():
            assert platform in integration.PLATFORMS, platform


def test_every_entity_class_has_entity_name_and_follows_its_coordinator() -> None:
    """has-entity-name; entity-unavailable (a coordinator entity is unavailable when its
    coordinator's update or connection fails)."""
    classes = entity_classes()
    assert len(classes) >= 10
    if status("has-entity-name") == "done":
        for cls in classes:
            assert class_default(cls, "_attr_has_entity_name") is True, cls
    if status("entity-unavailable") == "done":
        for cls in classes:
            assert issubclass(cls, CoordinatorEntity), cls


def snapshot_registry_entries() -> list[str]:
    """The entity registry entries the snapshot tests recorded (every kind's entities)."""
    entries: list[str] = []
    for path in SNAPSHOTS:
        text = path.read_text(encoding="utf-8")
        for part in text.split("EntityRegistryEntrySnapshot({")[1:]:
            entries.append(part.split("# name:")[0].split("StateSnapshot(")[0])
    return entries


def test_every_recorded_entity_has_a_name_and_a_translation_key() -> None:
    requires_done("entity-translations")
    entries = snapshot_registry_entries()
    assert len(entries) >= 50
    for entry in entries:
        assert "'has_entity_name': True" in entry, entry
        assert re.search(r"'translation_key': '[a-z0-9_]+'", entry), entry


async def test_every_entity_of_the_device_kinds_is_named_by_translation(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    mosquitto: Mosquitto,
    entity_registry: er.EntityRegistry,
) -> None:
    """Tasmota has no snapshot: its entities (and the others') as they are made."""
    requires_done("entity-translations")
    await publish_plug(mosquitto)
    dtu = MockConfigEntry(
        domain=DOMAIN,
        unique_id="34:85:18:a1:b2:c3",
        data={CONF_KIND: "opendtu", CONF_URL: opendtu.url, CONF_PASSWORD: "s3cret"},
        options={CONF_WEBSOCKET: False},
    )
    entries: list[ConfigEntry] = [dtu, tasmota_entry(mosquitto), tickrmeter_entry(mosquitto)]
    for entry in entries:
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    tasmota = entries[1]
    await until(
        hass, lambda: len(er.async_entries_for_config_entry(entity_registry, tasmota.entry_id)) > 5
    )
    for entry in entries:
        registered = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        assert registered, entry.data[CONF_KIND]
        for entity in registered:
            assert entity.has_entity_name, entity.entity_id
            assert entity.translation_key, entity.entity_id
        await hass.config_entries.async_unload(entry.entry_id)


def _calls(function: Any, name: str) -> list[ast.Call]:
    """The calls of ``self.<name>(...)`` in a function's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
    ]


def test_flows_for_reauth_and_reconfigure() -> None:
    flow = config_flow.FleetMetricsConfigFlow
    if status("reauthentication-flow") == "done":
        assert "async_step_reauth" in vars(flow)
        assert "async_step_reauth_confirm" in vars(flow)
        assert set(config_flow.REAUTH_SCHEMAS) >= {"opendtu", "tasmota", "tickrmeter"}
    if status("reconfiguration-flow") == "done":
        assert "async_step_reconfigure" in vars(flow)
        # Every kind: the three with settings here, host agents in their host sub-entries.
        assert set(config_flow.SCHEMAS) == {"opendtu", "tasmota", "tickrmeter"}
        assert "async_step_reconfigure" in vars(config_flow.HostSubentryFlow)
        # A broker at another address is the same entry: its unique id moves with it.
        (update,) = [
            call
            for call in _calls(flow._update_entry, "async_update_reload_and_abort")
            if any(keyword.arg == "unique_id" for keyword in call.keywords)
        ]
        assert update


def test_discovery_of_the_opendtu() -> None:
    """discovery: HA starts the flow for the mDNS type OpenDTU registers (``opendtu``,
    ``tcp``); discovery-update-info: a known DTU's URL is updated from the announcement."""
    requires_done("discovery")
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["zeroconf"] == ["_opendtu._tcp.local."]
    flow = config_flow.FleetMetricsConfigFlow
    assert {"async_step_zeroconf", "async_step_zeroconf_confirm"} <= set(vars(flow))
    assert {"name", "url"} <= set(
        re.findall(r"{(\w+)}", STRINGS["config"]["step"]["zeroconf_confirm"]["description"])
    )
    if status("discovery-update-info") == "done":
        assert _calls(flow.async_step_zeroconf, "_set_discovered_unique_id")
        (check,) = _calls(flow._set_discovered_unique_id, "_abort_if_unique_id_configured")
        assert any(keyword.arg == "updates" for keyword in check.keywords)


def test_config_flow_fields_are_described() -> None:
    requires_done("config-flow")
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config_flow"] is True
    for step_id, step in STRINGS["config"]["step"].items():
        described = set(step.get("data_description", {}))
        assert set(step.get("data", {})) <= described, step_id


def test_unique_config_entry() -> None:
    requires_done("unique-config-entry")
    source = inspect.getsource(config_flow)
    assert "async_set_unique_id" in source
    assert "_abort_if_unique_id_configured" in source


def test_diagnostics_redact_credentials_and_addresses() -> None:
    requires_done("diagnostics")
    diagnostics = importlib.import_module(f"{integration.__name__}.diagnostics")
    assert callable(diagnostics.async_get_config_entry_diagnostics)
    assert {CONF_PASSWORD, CONF_URL, CONF_HOST, "token"} <= diagnostics.TO_REDACT
    assert "async_redact_data" in inspect.getsource(diagnostics)


def test_runtime_data() -> None:
    requires_done("runtime-data")
    source = inspect.getsource(integration)
    assert re.search(r"FleetMetricsConfigEntry = ConfigEntry\[\w+\]", source)
    assert "entry.runtime_data = " in source
    for path, text in integration_sources().items():
        assert "hass.data[DOMAIN]" not in text, path


def test_config_entry_unloading() -> None:
    requires_done("config-entry-unloading")
    assert inspect.iscoroutinefunction(integration.async_unload_entry)


def test_strict_typing() -> None:
    requires_done("strict-typing")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mypy = pyproject["tool"]["mypy"]
    assert mypy.get("strict") is True
    for override in mypy.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        loosened = set(override) - {"module", "ignore_missing_imports"}
        assert not (loosened and any("fleet_metrics" in m for m in modules)), override


def _raised_ha_errors(tree: ast.AST) -> Iterator[ast.Call]:
    names = {
        "ConfigEntryAuthFailed",
        "ConfigEntryError",
        "ConfigEntryNotReady",
        "HomeAssistantError",
        "ServiceValidationError",
        "UpdateFailed",
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in names:
                yield node.exc


def test_exceptions_shown_to_users_are_translated() -> None:
    requires_done("exception-translations")
    raised = 0
    for path, text in integration_sources().items():
        for call in _raised_ha_errors(ast.parse(text)):
            raised += 1
            keys = {kw.arg: kw.value for kw in call.keywords}
            assert "translation_key" in keys, f"{path}:{call.lineno}"
            key = keys["translation_key"]
            assert isinstance(key, ast.Constant), f"{path}:{call.lineno}"
            assert key.value in STRINGS["exceptions"], f"{path}:{call.lineno}"
    assert raised >= 3


def test_repair_issues_have_their_strings() -> None:
    requires_done("repair-issues")
    kinds = [value for name, value in vars(repairs).items() if name.startswith("ISSUE_")]
    assert len(kinds) >= 2
    for kind in kinds:
        assert {"title", "description"} <= set(STRINGS["issues"][kind]), kind


def test_icons_by_translation_key_not_in_code() -> None:
    requires_done("icon-translations")
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(STRINGS["entity"][platform]), platform
    for path, text in integration_sources().items():
        assert not re.search(r"_attr_icon\b|\bicon=", text), path


def test_the_shared_web_session() -> None:
    requires_done("inject-websession")
    for path, text in integration_sources().items():
        assert "ClientSession(" not in text, path
    assert "async_get_clientsession" in (PACKAGE / "opendtu" / "__init__.py").read_text()


@pytest.mark.parametrize(
    ("rule", "least"), [("test-coverage", 95), ("config-flow-test-coverage", 100)]
)
def test_coverage_is_done_only_with_a_measured_number(rule: str, least: int) -> None:
    """No unit test can measure coverage (pytest --cov over tests/components does); done
    must cite that measurement, at least the rule's share."""
    requires_done(rule)
    measured = re.findall(r"(\d+(?:\.\d+)?) ?%", comment(rule))
    assert measured and min(float(m) for m in measured) >= least, comment(rule)


def test_the_integration_owner_is_named() -> None:
    requires_done("integration-owner")
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["codeowners"]


@pytest.mark.parametrize(
    ("rule", "heading"),
    [
        ("docs-removal-instructions", "### Removing it"),
        ("docs-troubleshooting", "### Troubleshooting"),
        ("docs-known-limitations", "### Known limitations"),
        ("docs-use-cases", "### What people use it for"),
        ("docs-examples", "### An automation on the events"),
    ],
)
def test_the_readme_has_the_documentation_rules_done(rule: str, heading: str) -> None:
    requires_done(rule)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert heading in readme
    section = readme.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    assert len(section.split()) > 40, f"{heading} says too little"


def test_the_readme_describes_the_broker_tls_and_mqtt_version_fields() -> None:
    requires_done("docs-installation-parameters")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for words in ("MQTT version", "CA file", "client certificate", "skip host name"):
        assert words in readme
