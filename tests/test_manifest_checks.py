"""manifest.json, hacs.json and strings.json against the rules hassfest and HACS apply.

The rules are restated here from hassfest (script/hassfest/manifest.py, translations.py in
home-assistant/core) and from HACS's hacs.json schema, not imported: neither ships in a
package this project can install. Where the integration's own code is the source of truth
(flow steps, errors, abort reasons, entity translation keys) the code is read with ``ast``,
so a key added in code without its string fails here and not in a user's browser.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import homeassistant
import pytest
import voluptuous as vol
from awesomeversion import AwesomeVersion, AwesomeVersionException, AwesomeVersionStrategy
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "fleet_metrics"
HA_COMPONENTS = Path(homeassistant.__file__).parent / "components"
MANIFEST_TEXT = (INTEGRATION / "manifest.json").read_text(encoding="utf-8")
MANIFEST: dict[str, Any] = json.loads(MANIFEST_TEXT)
HACS: dict[str, Any] = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
STRINGS: dict[str, Any] = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))
EN: dict[str, Any] = json.loads(
    (INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8")
)

# hassfest, manifest.py
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system"}
# hassfest, translations.py: RE_TRANSLATION_KEY, RE_PLACEHOLDER_IN_SINGLE_QUOTES,
# RE_COMBINED_REFERENCE
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
QUOTED_PLACEHOLDER = re.compile(r"'{\w+}'")
COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
HTML = re.compile(r"<[a-z/!]", re.IGNORECASE)


# ---------------------------------------------------------------- manifest.json


def _https_url(value: Any) -> str:
    parts = urlsplit(str(value))
    if parts.scheme != "https" or not parts.hostname:
        raise vol.Invalid("expected an https URL")
    return str(value)


def _documentation(value: Any) -> str:
    url = _https_url(value)
    if url.startswith("https://www.home-assistant.io/integrations"):
        raise vol.Invalid("a custom integration documents itself, not on home-assistant.io")
    return url


def _version(value: Any) -> str:
    try:
        version = AwesomeVersion(
            value,
            ensure_strategy=[
                AwesomeVersionStrategy.CALVER,
                AwesomeVersionStrategy.SEMVER,
                AwesomeVersionStrategy.SIMPLEVER,
                AwesomeVersionStrategy.BUILDVER,
                AwesomeVersionStrategy.PEP440,
            ],
        )
    except AwesomeVersionException as err:
        raise vol.Invalid(f"{value!r} is not a version hassfest accepts") from err
    return str(version)


def _codeowner(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"@[\w.-]+(/[\w.-]+)?", value):
        raise vol.Invalid("code owners are GitHub handles: @user or @org/team")
    return value


def _requirement(value: Any) -> str:
    Requirement(value)  # raises on anything pip would not accept
    return str(value)


def _service_type(value: Any) -> str:
    """python-zeroconf browses only full service types: ``_name._tcp.local.``."""
    if not isinstance(value, str) or not re.fullmatch(
        r"_[a-z0-9-]{1,15}\._(tcp|udp)\.local\.", value
    ):
        raise vol.Invalid("a zeroconf type is _name._tcp.local. or _name._udp.local.")
    return value


def _lowercase(value: Any) -> str:
    if not isinstance(value, str) or value.lower() != value:
        raise vol.Invalid("hassfest: zeroconf name and properties match in lowercase")
    return value


# hassfest, manifest.py: a zeroconf matcher is a service type, or its type with a name
# and TXT properties to match (deprecated top-level keys left out).
ZEROCONF_MATCHER = vol.Any(
    _service_type,
    vol.Schema(
        {
            vol.Required("type"): _service_type,
            vol.Optional("name"): _lowercase,
            vol.Optional("properties"): {str: _lowercase},
        }
    ),
)

# Required here is what a custom integration needs (hassfest requires domain, name,
# documentation and codeowners of every integration, iot_class of every device integration,
# version of custom ones; HACS requires issue_tracker; the rest is this project's rule).
CUSTOM_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Required("codeowners"): vol.All([_codeowner], vol.Length(min=1)),
        vol.Required("config_flow"): True,
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Required("documentation"): _documentation,
        vol.Required("integration_type"): vol.In(INTEGRATION_TYPES),
        vol.Required("iot_class"): vol.In(IOT_CLASSES),
        vol.Required("issue_tracker"): _https_url,
        vol.Optional("loggers"): [str],
        vol.Optional("requirements"): [_requirement],
        vol.Optional("single_config_entry"): bool,
        vol.Required("version"): _version,
        vol.Optional("zeroconf"): vol.All([ZEROCONF_MATCHER], vol.Length(min=1)),
    }
)


def test_manifest_passes_the_custom_integration_schema() -> None:
    CUSTOM_MANIFEST_SCHEMA(MANIFEST)


def test_manifest_keys_are_domain_name_then_sorted() -> None:
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), "hassfest: domain, name, then alphabetical order"


def test_manifest_is_formatted_as_hassfest_writes_it() -> None:
    """hassfest rewrites manifest.json with two-space indents and a final newline."""
    assert json.dumps(MANIFEST, indent=2) + "\n" == MANIFEST_TEXT


def test_manifest_domain_is_the_folder_and_no_core_integration() -> None:
    assert MANIFEST["domain"] == INTEGRATION.name
    assert not (HA_COMPONENTS / MANIFEST["domain"]).exists()
    assert (INTEGRATION / "config_flow.py").exists()  # config_flow: true needs one


def test_manifest_dependencies_are_home_assistant_integrations() -> None:
    for name in MANIFEST.get("dependencies", []) + MANIFEST.get("after_dependencies", []):
        assert (HA_COMPONENTS / name / "manifest.json").exists(), name


def test_manifest_requirements_are_met_by_the_tested_packages() -> None:
    """What Home Assistant would install is what the tests ran against."""
    for text in MANIFEST["requirements"]:
        requirement = Requirement(text)
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (text, installed)


def test_manifest_schema_refuses_what_hassfest_refuses() -> None:
    """The schema above is a check that can fail: each of these breaks one rule."""
    broken = [
        {**MANIFEST, "iot_class": "local"},
        {**MANIFEST, "codeowners": ["fleet-metrics"]},
        {**MANIFEST, "documentation": "https://www.home-assistant.io/integrations/x"},
        {**MANIFEST, "version": "next"},
        {**MANIFEST, "quality_scale": "gold"},  # core only; a custom one has quality_scale.yaml
        {key: value for key, value in MANIFEST.items() if key != "version"},
        {**MANIFEST, "zeroconf": ["_opendtu._tcp"]},  # python-zeroconf needs ".local."
        {**MANIFEST, "zeroconf": [{"type": "_http._tcp.local.", "name": "OpenDTU*"}]},
    ]
    for manifest in broken:
        with pytest.raises(vol.Invalid):
            CUSTOM_MANIFEST_SCHEMA(manifest)


# ---------------------------------------------------------------- hacs.json

# HACS's hacs.json schema (hacs/integration, utils/validate.py): these keys and no others.
HACS_SCHEMA = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
    }
)


def test_hacs_json_has_only_keys_hacs_accepts() -> None:
    HACS_SCHEMA(HACS)
    assert HACS["name"] == MANIFEST["name"]


def test_hacs_finds_exactly_one_integration() -> None:
    """content_in_root false: HACS installs custom_components/<the one folder>."""
    assert HACS.get("content_in_root", False) is False
    folders = [p.name for p in (ROOT / "custom_components").iterdir() if p.is_dir()]
    assert [f for f in folders if not f.startswith(("_", "."))] == [MANIFEST["domain"]]


def test_hacs_minimum_home_assistant_is_the_tested_one_or_older() -> None:
    from homeassistant.const import __version__ as tested

    assert AwesomeVersion(HACS["homeassistant"]) <= AwesomeVersion(tested)


# ---------------------------------------------------------------- strings.json


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))


def _translation_problems(strings: dict[str, Any]) -> list[str]:
    """hassfest's value and key rules, applied everywhere in the file."""
    problems = []
    for path, value in _walk(strings):
        where = ".".join(path)
        if isinstance(value, str):
            if HTML.search(value):
                problems.append(f"{where}: HTML")
            if QUOTED_PLACEHOLDER.search(value):
                problems.append(f"{where}: placeholder in single quotes")
            if COMBINED_REFERENCE.search(value):
                problems.append(f"{where}: a [%key:...%] reference combined with text")
            if value != value.strip():
                problems.append(f"{where}: leading or trailing spaces")
            if not value:
                problems.append(f"{where}: empty")
        elif not isinstance(value, dict):
            problems.append(f"{where}: not a string")
    # Keys hassfest validates with RE_TRANSLATION_KEY: entity keys and their states,
    # selector options, exceptions, issues.
    checked_keys: list[tuple[str, str]] = []
    for platform, entities in strings.get("entity", {}).items():
        for key, entity in entities.items():
            checked_keys.append((f"entity.{platform}", key))
            checked_keys += [(f"entity.{platform}.{key}.state", s) for s in entity.get("state", {})]
    for key, selector in strings.get("selector", {}).items():
        checked_keys += [(f"selector.{key}.options", option) for option in selector["options"]]
    for section in ("exceptions", "issues"):
        checked_keys += [(section, key) for key in strings.get(section, {})]
    problems += [
        f"{where}: bad key {key!r}" for where, key in checked_keys if not TRANSLATION_KEY.match(key)
    ]
    return problems


def _flow_sections(strings: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "config", strings["config"]
    if "options" in strings:
        yield "options", strings["options"]
    for kind, section in strings.get("config_subentries", {}).items():
        yield f"config_subentries.{kind}", section


# Found by this test, to be fixed in config_flow.py and strings.json (the lead's files): the
# MQTT protocol selector's options are translation keys, and "3.1.1" is not one hassfest
# accepts. Remove the entry with the fix; a new problem, or the fix alone, fails the test.
KNOWN_PROBLEMS: list[str] = []


@pytest.mark.parametrize("name", ["strings.json", "translations/en.json"])
def test_translations_follow_hassfest_rules(name: str) -> None:
    strings = STRINGS if name == "strings.json" else EN
    assert _translation_problems(strings) == KNOWN_PROBLEMS
    allowed = {"flow_title", "step", "error", "abort", "progress", "create_entry"}
    step_keys = {
        "title",
        "description",
        "data",
        "data_description",
        "menu_options",
        "submit",
        "sections",
    }
    for where, section in _flow_sections(strings):
        extra = allowed | ({"entry_type", "initiate_flow"} if "subentries" in where else set())
        assert set(section) <= extra, where
        assert "title" not in section, f"{where}.title was removed from config flows"
        for step_id, step in section["step"].items():
            assert set(step) <= step_keys, f"{where}.step.{step_id}"
            described = set(step.get("data_description", {}))
            assert described <= set(step.get("data", {})), (
                f"{where}.step.{step_id}: data_description without data"
            )
        if "subentries" in where:
            # The frontend's button and the sub-entry's kind in the entry's page.
            assert section["entry_type"] and section["initiate_flow"]["user"], where


def _key_paths(strings: dict[str, Any]) -> set[tuple[str, ...]]:
    return {path for path, value in _walk(strings) if isinstance(value, str)}


def test_en_json_has_exactly_the_keys_of_strings_json() -> None:
    """en.json is strings.json with its [%key:...%] references resolved (tested in
    tests/components/test_translations.py): the same keys, none left behind."""
    assert _key_paths(EN) == _key_paths(STRINGS)


# ---------------------------------------------------------------- code against strings

FLOW_BASES = {
    "ConfigFlow": "config",
    "OptionsFlow": "options",
    "ReloadingOptionsFlow": "options",
    "ConfigSubentryFlow": "config_subentries",
}
# Reasons Home Assistant's flow helpers use when the code names none.
DEFAULT_REASONS = {
    "_abort_if_unique_id_configured": "already_configured",
    "_abort_if_unique_id_mismatch": "unique_id_mismatch",
    "async_update_and_abort": "reconfigure_successful",  # sub-entry reconfigure
}


def _sources() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(INTEGRATION.rglob("*.py"))
        if "core" not in path.relative_to(INTEGRATION).parts
    }


SOURCES = _sources()


def _constants() -> dict[str, Any]:
    """Module-level names bound to a string, or to a dict/list/tuple of strings, across
    the integration (const.py names are imported everywhere under the same name)."""
    found: dict[str, Any] = {}
    for tree in SOURCES.values():
        for node in tree.body:
            target, value = None, None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            if isinstance(target, ast.Name) and value is not None:
                try:
                    found.setdefault(target.id, ast.literal_eval(value))
                except ValueError:
                    continue
    return found


CONSTANTS = _constants()


def _strings_in(node: ast.AST | None) -> set[str]:
    """Every string an expression can evaluate to: literals, and names bound to strings or
    to dicts of strings (``FILE_ERRORS.get(key, "invalid_settings")``)."""
    if node is None:
        return set()
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.add(child.value)
        elif isinstance(child, ast.Name) and child.id in CONSTANTS:
            value = CONSTANTS[child.id]
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, dict):
                found |= {v for v in value.values() if isinstance(v, str)}
            elif isinstance(value, list | tuple):
                found |= {v for v in value if isinstance(v, str)}
    return found


def _resolved(node: ast.AST | None) -> str | None:
    """A literal string, or a module-level constant; None for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(CONSTANTS.get(node.id), str):
        return str(CONSTANTS[node.id])
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _subentry_types() -> dict[str, str]:
    """Sub-entry flow class -> its type, from ``{SUBENTRY_HOST: HostSubentryFlow}``."""
    types: dict[str, str] = {}
    for tree in SOURCES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(value, ast.Name) and (kind := _resolved(key)):
                        types[value.id] = kind
    return types


class FlowUse:
    """What the code of the flows asks strings.json for, per section."""

    def __init__(self) -> None:
        self.steps: dict[str, set[str]] = defaultdict(set)
        self.computed_steps: dict[str, int] = defaultdict(int)
        self.menus: dict[tuple[str, str], set[str]] = {}
        self.errors: dict[str, set[str]] = defaultdict(set)
        self.aborts: dict[str, set[str]] = defaultdict(set)
        self.methods: dict[str, set[str]] = defaultdict(set)
        self.helper_steps: dict[str, int] = defaultdict(int)
        self.update_reload_defaults: set[str] = set()

    def read(self, node: ast.AST, section: str) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.AsyncFunctionDef) and child.name.startswith("async_step_"):
                self.methods[section].add(child.name.removeprefix("async_step_"))
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    if (
                        isinstance(target, ast.Subscript)
                        and getattr(target.value, "id", None) == "errors"
                    ):
                        self.errors[section] |= _strings_in(child.value)
            if not isinstance(child, ast.Call) or not isinstance(child.func, ast.Attribute):
                continue
            method = child.func.attr
            if method in ("async_show_form", "async_show_menu"):
                step = _resolved(_keyword(child, "step_id"))
                if step is None:
                    self.computed_steps[section] += 1
                else:
                    self.steps[section].add(step)
                options = _keyword(child, "menu_options")
                if step is not None and options is not None:
                    self.menus[(section, step)] = _strings_in(options)
                errors = _keyword(child, "errors")
                if isinstance(errors, ast.Dict):
                    self.errors[section] |= _strings_in(errors)
            reason = _keyword(child, "reason")
            if method in ("async_abort", "async_update_reload_and_abort") or (
                method in DEFAULT_REASONS
            ):
                if reason is not None:
                    self.aborts[section] |= _strings_in(reason)
                elif method in DEFAULT_REASONS:
                    self.aborts[section].add(DEFAULT_REASONS[method])
                elif method == "async_update_reload_and_abort":
                    # Its default reason follows the step it ends: reauth or reconfigure.
                    self.update_reload_defaults.add(section)
        self._steps_passed_to_helpers(node, section)

    def _steps_passed_to_helpers(self, node: ast.AST, section: str) -> None:
        """``def _show_token(self, step_id)`` called as ``self._show_token("token")``."""
        helpers = {
            child.name: [arg.arg for arg in child.args.args]
            for child in ast.walk(node)
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            and "step_id" in [arg.arg for arg in child.args.args]
        }
        for child in ast.walk(node):
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr in helpers
            ):
                params = helpers[child.func.attr][1:]  # without self
                index = params.index("step_id")
                arg = child.args[index] if index < len(child.args) else _keyword(child, "step_id")
                if (step := _resolved(arg)) is not None:
                    self.steps[section].add(step)
                    self.helper_steps[section] += 1


def _flow_use() -> FlowUse:
    use = FlowUse()
    subentry_types = _subentry_types()
    for tree in SOURCES.values():
        flow_classes = []
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
            section = next((FLOW_BASES[b] for b in bases if b in FLOW_BASES), None)
            if section == "config_subentries":
                section = f"config_subentries.{subentry_types[node.name]}"
            if section is not None:
                flow_classes.append(section)
                use.read(node, section)
        # Helpers at module level (probes, validators) fill the errors of the config flow
        # they are written for: the module's own, or the main flow's when the module has none.
        helpers = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        target = next((s for s in flow_classes if s != "options"), "config")
        for helper in helpers:
            use.read(helper, target)
    return use


USE = _flow_use()


def _section(where: str) -> dict[str, Any]:
    node: dict[str, Any] = STRINGS
    for part in where.split("."):
        node = node[part]
    return node


def test_the_code_scan_finds_the_flows() -> None:
    """Guards the scan itself: renamed helpers must not make the checks below vacuous."""
    assert {"config", "options", "config_subentries.host"} <= set(USE.steps)
    assert "cannot_connect" in USE.errors["config"] and "unknown" in USE.errors["config"]
    assert "wrong_device" in USE.aborts["config"]
    assert USE.menus[("config", "user")]


def test_every_step_the_code_shows_has_strings() -> None:
    for section, steps in USE.steps.items():
        assert steps <= set(_section(section)["step"]), section


def test_computed_step_ids_are_the_menu_options_of_their_flow() -> None:
    """``step_id=kind``: every kind the menu offers must have its step strings."""
    for (section, step), options in USE.menus.items():
        menu = _section(section)["step"][step]["menu_options"]
        assert set(menu) == options, f"{section}.step.{step}.menu_options"
        assert options <= set(_section(section)["step"]), section
        assert options <= USE.methods[section], f"{section}: a menu option has no step"
    # Any other computed step_id comes from a helper whose callers pass it literally.
    for section in USE.computed_steps:
        assert section in {s for s, _ in USE.menus} or USE.helper_steps[section], section


def test_every_error_and_abort_reason_the_code_uses_has_a_string() -> None:
    for section, errors in USE.errors.items():
        known = set(_section(section).get("error", {}))
        # Field names and "base" are keys of the errors dict, not codes.
        missing = {e for e in errors - known if e != "base" and e not in _field_names()}
        assert missing == set(), f"{section}.error"
    for section, reasons in USE.aborts.items():
        assert reasons <= set(_section(section).get("abort", {})), f"{section}.abort"
    for section in USE.update_reload_defaults:
        aborts = set(_section(section).get("abort", {}))
        if "reauth" in USE.methods[section]:
            assert "reauth_successful" in aborts, section
        if "reconfigure" in USE.methods[section]:
            assert "reconfigure_successful" in aborts, section


def _field_names() -> set[str]:
    return {
        key
        for section in _flow_sections(STRINGS)
        for step in section[1]["step"].values()
        for key in step.get("data", {})
    }


def _entity_keys() -> dict[str, set[str]]:
    """translation_key= of entity descriptions and _attr_translation_key, by platform file."""
    keys: dict[str, set[str]] = defaultdict(set)
    for path, tree in SOURCES.items():
        if path.stem not in ("sensor", "binary_sensor"):
            continue
        for node in ast.walk(tree):
            value: ast.AST | None = None
            if isinstance(node, ast.Call):
                value = _keyword(node, "translation_key")
            elif isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "_attr_translation_key" for t in node.targets
            ):
                value = node.value
            if (key := _resolved(value)) is not None:
                keys[path.stem].add(key)
    return keys


def test_every_entity_translation_key_has_a_name() -> None:
    found = _entity_keys()
    assert found["sensor"] and found["binary_sensor"]
    for platform, keys in found.items():
        entities = STRINGS["entity"][platform]
        assert keys <= set(entities), platform
        assert all(entities[key].get("name") for key in keys), platform


def test_every_exception_translation_key_has_a_message() -> None:
    keys = set()
    for tree in SOURCES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _keyword(node, "translation_domain") is not None:
                key = _resolved(_keyword(node, "translation_key"))
                if key is not None:
                    keys.add(key)
    assert keys
    assert keys <= set(STRINGS["exceptions"])
    assert all(STRINGS["exceptions"][key].get("message") for key in keys)
