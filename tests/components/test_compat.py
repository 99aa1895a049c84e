"""The HA version differences in compat.py: each branch picked by the feature, both tested.

The pinned stack (HA 2025.4) takes the old branches for real; the new branches are taken by
pretending the feature exists, and checked against the rule newer HA enforces.
"""

from __future__ import annotations

import ast
from collections.abc import Generator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState, OptionsFlow
from homeassistant.const import CONF_PASSWORD, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics import compat
from custom_components.fleet_metrics.const import DOMAIN
from tests.opendtu_fake import FakeOpenDtu, start_fake

from .conftest import Reloads, setup_entry

ROOT = Path(__file__).parents[2]
INTEGRATION = ROOT / "custom_components" / "fleet_metrics"
DTU = (DOMAIN, "34:85:18:a1:b2:c3")

# --- feature checks ---------------------------------------------------------------------


class _RegistryWithId:
    def async_get_or_create(self, *, config_entry_id: str, via_device_id: str = "") -> None:
        """Like the registry of HA 2026.8 and later."""


class _RegistryWithIdentifier:
    def async_get_or_create(self, *, config_entry_id: str, via_device: Any = None) -> None:
        """Like the registry of HA before 2026.8."""


def test_options_flow_reload_check_looks_for_the_class() -> None:
    class WithReload(OptionsFlow):
        automatic_reload = True

    assert compat.options_flow_reloads(SimpleNamespace(OptionsFlowWithReload=WithReload))
    assert not compat.options_flow_reloads(SimpleNamespace(OptionsFlow=OptionsFlow))
    assert compat.pick_options_flow(SimpleNamespace(OptionsFlowWithReload=WithReload)) is (
        WithReload
    )
    assert compat.pick_options_flow(SimpleNamespace(OptionsFlow=OptionsFlow)) is OptionsFlow


def test_options_flows_and_listener_agree_on_the_running_ha() -> None:
    """One of the two reload paths, never both and never neither."""
    reloads_itself = hasattr(config_entries, "OptionsFlowWithReload")
    assert compat.OPTIONS_FLOW_RELOADS is reloads_itself
    assert (compat.ReloadingOptionsFlow is not OptionsFlow) is reloads_itself


def test_via_device_id_check_reads_the_registry_signature() -> None:
    assert compat.registry_takes_via_device_id(_RegistryWithId)
    assert not compat.registry_takes_via_device_id(_RegistryWithIdentifier)
    assert not compat.registry_takes_via_device_id(object)


def test_via_device_id_check_agrees_with_device_info_on_the_running_ha() -> None:
    """Two independent signals of the same HA change: the registry and ``DeviceInfo``."""
    keys = getattr(DeviceInfo, "__optional_keys__", frozenset())
    assert compat.VIA_DEVICE_ID is ("via_device_id" in keys)


@pytest.mark.parametrize(
    ("takes_id", "expected"),
    [(True, {"via_device_id": "dtu-device-id"}), (False, {"via_device": DTU})],
)
def test_child_device_info_links_by_what_the_registry_takes(
    monkeypatch: pytest.MonkeyPatch, takes_id: bool, expected: dict[str, Any]
) -> None:
    monkeypatch.setattr(compat, "VIA_DEVICE_ID", takes_id)
    info = compat.child_device_info(DTU, "dtu-device-id", name="HM800", serial_number="1141")
    assert dict(info) == {"name": "HM800", "serial_number": "1141", **expected}


# --- the device registry, for real ------------------------------------------------------


@pytest.fixture
def from_info_calls(monkeypatch: pytest.MonkeyPatch) -> list[DeviceInfo]:
    """Gives the pinned registry HA 2026's ``async_get_or_create_from_info``."""
    calls: list[DeviceInfo] = []

    def from_info(
        self: dr.DeviceRegistry, *, config_entry_id: str, device_info: DeviceInfo
    ) -> dr.DeviceEntry:
        calls.append(device_info)
        return self.async_get_or_create(config_entry_id=config_entry_id, **device_info)

    monkeypatch.setattr(
        dr.DeviceRegistry, "async_get_or_create_from_info", from_info, raising=False
    )
    monkeypatch.setattr(compat, "CREATE_FROM_INFO", True)
    return calls


async def _register(
    hass: HomeAssistant, entry: MockConfigEntry | None = None
) -> tuple[MockConfigEntry, str]:
    if entry is None:
        entry = MockConfigEntry(domain=DOMAIN, unique_id=DTU[1])
        entry.add_to_hass(hass)
    info = DeviceInfo(identifiers={DTU}, name="OpenDTU-Buero", manufacturer="OpenDTU")
    return entry, compat.register_device(hass, entry, info)


async def test_register_device_with_keywords(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    entry, device_id = await _register(hass)
    device = device_registry.async_get(device_id)
    assert device is not None
    assert device.identifiers == {DTU}
    assert device.config_entries == {entry.entry_id}
    assert (await _register(hass, entry))[1] == device_id, "a reload finds the same device"


async def test_register_device_from_info(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry, from_info_calls: list[DeviceInfo]
) -> None:
    _, device_id = await _register(hass)
    device = device_registry.async_get(device_id)
    assert device is not None
    assert device.name == "OpenDTU-Buero"
    assert [info["identifiers"] for info in from_info_calls] == [{DTU}]


async def test_inverters_sit_behind_the_dtu_by_device_id(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """On the pinned HA through ``via_device``; the DTU is registered before any inverter."""
    await setup_entry(hass, opendtu_entry)
    coordinator = opendtu_entry.runtime_data.coordinator
    dtu = device_registry.async_get(coordinator.dtu_device_id)
    assert dtu is not None
    assert DTU in dtu.identifiers
    inverters = [
        device
        for device in dr.async_entries_for_config_entry(device_registry, opendtu_entry.entry_id)
        if device.id != dtu.id
    ]
    assert inverters
    assert {device.via_device_id for device in inverters} == {dtu.id}


# --- one reload path --------------------------------------------------------------------


@pytest.fixture
def ha_that_reloads_options(monkeypatch: pytest.MonkeyPatch) -> Generator[list[bool]]:
    """Behave as on HA with ``OptionsFlowWithReload``, and record what HA 2026.12 checks.

    HA 2026.11 warns, and 2026.12 fails, when an entry that has update listeners is
    reloaded by a flow (``async_update_reload_and_abort``, ``_abort_if_unique_id_configured``
    with updates) or by ``OptionsFlowWithReload``. Each of them schedules the reload through
    ``async_schedule_reload``: the list gets, for every reload, whether listeners were there.
    """
    monkeypatch.setattr(compat, "OPTIONS_FLOW_RELOADS", True)
    had_listeners: list[bool] = []
    manager = config_entries.ConfigEntries
    schedule = manager.async_schedule_reload

    def checking(self: config_entries.ConfigEntries, entry_id: str) -> None:
        had_listeners.append(bool(self.async_get_known_entry(entry_id).update_listeners))
        schedule(self, entry_id)

    with patch.object(manager, "async_schedule_reload", checking):
        yield had_listeners


async def test_listener_only_where_options_flows_cannot_reload(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, opendtu_entry)
    assert len(opendtu_entry.update_listeners) == (0 if compat.OPTIONS_FLOW_RELOADS else 1)


async def test_no_listener_on_ha_that_reloads_options(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    ha_that_reloads_options: list[bool],
) -> None:
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.LOADED
    assert opendtu_entry.update_listeners == []


async def test_flows_reload_once_without_listeners_on_newer_ha(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    ha_that_reloads_options: list[bool],
    reloads: Reloads,
) -> None:
    """Reauth, reconfigure and a DTU at a new address, as HA 2026.12 runs them."""
    await setup_entry(hass, opendtu_entry)
    reloads.forget()

    result = await opendtu_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "new"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()

    result = await opendtu_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: opendtu.url}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    moved = await start_fake(FakeOpenDtu(overview=opendtu.overview, details=opendtu.details))
    try:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "opendtu"}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: moved.url}
        )
        assert result["reason"] == "already_configured"
        await hass.async_block_till_done()
        entry_id = opendtu_entry.entry_id
        assert reloads.reloads == reloads.setups == [entry_id] * 3
        assert ha_that_reloads_options == [False] * 3
        assert opendtu_entry.state is ConfigEntryState.LOADED
    finally:
        await hass.config_entries.async_unload(opendtu_entry.entry_id)
        await moved.close()


# --- code that works on every HA and Python we meet -------------------------------------


def _glue_files() -> list[Path]:
    return [p for p in INTEGRATION.rglob("*.py") if "core" not in p.relative_to(INTEGRATION).parts]


def _trees(paths: list[Path]) -> Iterator[tuple[Path, ast.AST]]:
    for path in paths:
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def test_glue_never_reads_validation_error_text() -> None:
    """Under HA 2026.9 ``voluptuous`` is probatio: its messages differ, its classes do not.

    Errors are told apart by class and field, and shown through translation keys.
    """
    found = []
    for path, tree in _trees(_glue_files()):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"msg", "error_message"}:
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    if (
                        isinstance(operand, ast.Call)
                        and isinstance(operand.func, ast.Name)
                        and operand.func.id in {"str", "repr"}
                    ):
                        found.append(f"{path.name}:{node.lineno} compares error text")
    assert found == []


# Removed in Python 3.14 or deprecated there: name -> the module it belongs to.
PY314_GONE = {
    "get_event_loop": "asyncio",  # no implicit loop any more
    "get_event_loop_policy": "asyncio",
    "set_event_loop_policy": "asyncio",
    "AbstractEventLoopPolicy": "asyncio",
    "DefaultEventLoopPolicy": "asyncio",
    "iscoroutinefunction": "asyncio",  # inspect's stays
    "get_child_watcher": "asyncio",
    "utcnow": "datetime",
    "utcfromtimestamp": "datetime",
    "Num": "ast",
    "Str": "ast",
    "Bytes": "ast",
    "NameConstant": "ast",
    "ByteString": "typing",
    "find_loader": "pkgutil",
    "get_loader": "pkgutil",
}


def _owner(node: ast.expr) -> str:
    """``asyncio`` for ``asyncio.x``, ``datetime`` for ``datetime.datetime.x``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _py314_hits(tree: ast.AST) -> list[tuple[int, str]]:
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and PY314_GONE.get(node.attr) == _owner(node.value):
            hits.append((node.lineno, node.attr))
        if isinstance(node, ast.ImportFrom) and node.module:
            hits += [
                (node.lineno, alias.name)
                for alias in node.names
                if PY314_GONE.get(alias.name) == node.module.split(".")[0]
                or (alias.name == "ByteString" and node.module == "collections.abc")
            ]
    return hits


def test_no_api_that_python_3_14_removed_or_deprecated() -> None:
    """HA runs on Python 3.14 since 2026.3: the integration and the runner too."""
    paths = [*INTEGRATION.rglob("*.py"), *(ROOT / "standalone").rglob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path, tree in _trees(paths)
        for line, name in _py314_hits(tree)
    ]
    assert found == []


def test_the_python_3_14_check_finds_what_it_looks_for() -> None:
    source = (
        "import asyncio, datetime, inspect\n"
        "from collections.abc import ByteString\n"
        "from pkgutil import find_loader\n"
        "asyncio.get_event_loop()\n"
        "datetime.datetime.utcnow()\n"
        "asyncio.iscoroutinefunction(f)\n"
        "inspect.iscoroutinefunction(f)\n"
        "dt_util.utcnow()\n"
    )
    hits = _py314_hits(ast.parse(source))
    assert [name for _, name in sorted(hits)] == [
        "ByteString",
        "find_loader",
        "get_event_loop",
        "utcnow",
        "iscoroutinefunction",
    ]


def test_only_compat_asks_which_ha_runs() -> None:
    """Version checks and feature probes of HA live in compat.py alone."""
    probes = {"MAJOR_VERSION", "MINOR_VERSION", "__version__", "OptionsFlowWithReload"}
    found = []
    for path, tree in _trees(_glue_files()):
        if path.name == "compat.py":
            continue
        for node in ast.walk(tree):
            name = getattr(node, "id", None) or getattr(node, "attr", None)
            if name in probes:
                found.append(f"{path.name}:{getattr(node, 'lineno', 0)} {name}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "hasattr":
                found.append(f"{path.name}:{node.lineno} hasattr")
    assert found == []
