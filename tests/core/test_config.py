from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.config import ConfigError, load, loads, validate
from custom_components.fleet_metrics.core.sources import KINDS
from tests.mosquitto import make_certificates

GOOD = """
[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
output = "stdout"
flush_interval = 1

[brokers.home]
host = "localhost"

[[sources]]
kind = "demo"
name = "demo"
interval = 1

[[sources]]
kind = "opendtu"
name = "roof"
url = "opendtu.local"
"""


def test_good_config_gets_defaults() -> None:
    config = loads(GOOD)
    assert config["prometheus"] == {"listen": "127.0.0.1:0", "ttl": 300.0, "max_series": 100_000}
    assert config["brokers"]["home"]["port"] == 1883
    demo, roof = config["sources"]
    assert demo["interval"] == 1.0
    assert roof["url"] == "http://opendtu.local"
    assert roof["websocket"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sources]]\nkind = "demo"\nname = "d"\ninterval = "soon"', "sources[0].interval"),
        ('[[sources]]\nkind = "opendtu"\nname = "d"', "sources[0].url: required key"),
        ('[[sources]]\nkind = "opendtu"\nname = "d"\nurl = "ftp://x"', "sources[0].url"),
        ('[[sources]]\nkind = "telepathy"\nname = "d"', "sources[0].kind"),
        ('[[sources]]\nkind = "demo"\nname = "d"\nintervall = 1', "sources[0].intervall: extra"),
        ('[prometheus]\nlisten = "9847"', "prometheus.listen"),
        ('[line_protocol]\noutput = "kafka"', "line_protocol.output"),
        ("[brokers.home]\nport = 1883", "brokers.home.host"),
        (
            '[[sources]]\nkind = "demo"\nname = "a"\n[[sources]]\nkind = "demo"\nname = "a"',
            "sources[1].name: 'a' is used twice",
        ),
        ("[prometheus\nlisten = 1", "not valid TOML"),
        ("colour = 'blue'", "colour: extra keys not allowed"),
    ],
)
def test_bad_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml")


# --- every kind of bad setting is one ConfigError naming its key ---------------------------

EVERY_KIND = """
[prometheus]
listen = "127.0.0.1:0"

[brokers.home]
host = "localhost"

[[sources]]
kind = "demo"
name = "demo"

[[sources]]
kind = "opendtu"
name = "roof"
url = "opendtu.local"

[[sources]]
kind = "websocket"
name = "feed"
url = "ws://feed.local/ws"
fields = { power = "data.power" }

[[sources]]
kind = "tasmota"
name = "plugs"
broker = "home"

[[sources]]
kind = "tickrmeter"
name = "fleet"
broker = "home"

[[sources]]
kind = "agents"
name = "hosts"
database = "agents.sqlite"
"""


def _number_paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every place in a validated config that holds a number."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _number_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _number_paths(value, (*path, index))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path


def _replaced(node: Any, path: tuple[str | int, ...], value: Any) -> Any:
    copy = deepcopy(node)
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def _shown(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def test_every_kind_validates_and_its_output_is_valid_input() -> None:
    config = loads(EVERY_KIND)
    assert {s["kind"] for s in config["sources"]} == set(KINDS)
    assert validate(config) == config


NUMBER_PATHS = [_shown(p) for p in _number_paths(loads(EVERY_KIND))]


@pytest.mark.parametrize("path", NUMBER_PATHS)
@pytest.mark.parametrize("wrong", [True, False, "5"], ids=["true", "false", "string"])
def test_a_number_setting_refuses_booleans_and_strings(path: str, wrong: Any) -> None:
    """``interval = true`` is not 1 second: voluptuous' int and Coerce(float) accept it."""
    config = loads(EVERY_KIND)
    parts = next(p for p in _number_paths(config) if _shown(p) == path)
    with pytest.raises(ConfigError) as info:
        validate(_replaced(config, parts, wrong))
    assert str(info.value).startswith(f"{path}: ")


def test_every_number_setting_is_covered() -> None:
    # The parametrisation above is derived from the config; make sure it is not empty.
    assert {"prometheus.ttl", "brokers.home.port", "sources[0].interval"} <= set(NUMBER_PATHS)
    assert "line_protocol.batch_lines" in NUMBER_PATHS
    assert "dead_letter_max_bytes" in NUMBER_PATHS


def test_new_output_settings_have_their_defaults() -> None:
    config = loads(GOOD)
    assert config["line_protocol"]["batch_lines"] == 5000
    assert config["line_protocol"]["batch_bytes"] == 1_000_000
    assert config["dead_letter"] == ""
    assert config["dead_letter_max_bytes"] == 10_485_760
    assert config["shutdown_timeout"] == 5.0
    assert config["log_format"] == "text"


@pytest.mark.parametrize(
    "text",
    ["", "\n# nothing but a comment\n", "[prometheus]\nlisten = ''\n", "sources = []\n"],
)
def test_no_sources_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^sources: nothing to run"):
        loads(text)


@given(st.binary(min_size=1, max_size=200))
@settings(max_examples=200, deadline=None)
def test_a_file_that_is_not_utf8_is_one_error(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_bytes(GOOD.encode() + data)
        with pytest.raises(ConfigError) as info:
            load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not UTF-8 text (byte 0x")
    assert "\n" not in message


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load(path)["sources"][0]["name"] == "demo"


# TOML values of every type, under keys the config knows and keys it does not.
_KEYS = st.sampled_from(
    ["prometheus", "line_protocol", "brokers", "sources", "listen", "ttl", "output", "kind",
     "name", "interval", "url", "broker", "host", "port", "tls", "ca_file", "dead_letter",
     "batch_lines", "home", "fields", "log_level", "x"]
)  # fmt: skip
_SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["demo", "opendtu", "tasmota", "stdout", "127.0.0.1:0", "home", ""])
)
_TOML_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(_KEYS, _TOML_VALUES, max_size=5))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_toml_document_is_a_config_or_one_config_error(raw: dict[str, Any]) -> None:
    """Whatever the file holds, validation ends in a config or in ConfigError, never in a
    traceback; and the error is one line that starts with a key."""
    try:
        validate(raw)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message
        assert re.match(r"^(\(top level\)|[A-Za-z_]\S*): \S", message), message


# --- TLS files --------------------------------------------------------------------------------


def _broker(tmp_path: Path, **settings: Any) -> str:
    lines = "\n".join(
        f"{key} = {str(value).lower() if isinstance(value, bool) else repr(str(value))}"
        for key, value in settings.items()
    )
    return f'[brokers.home]\nhost = "localhost"\n{lines}\n' + (
        '[[sources]]\nkind = "tasmota"\nname = "plugs"\nbroker = "home"\n'
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certificates")
    make_certificates(folder)
    (folder / "garbage.pem").write_text("not a certificate\n")
    return folder


def test_real_tls_files_are_accepted(tmp_path: Path, certificates: Path) -> None:
    config = loads(
        _broker(
            tmp_path,
            tls=True,
            ca_file=certificates / "ca.crt",
            cert_file=certificates / "client.crt",
            key_file=certificates / "client.key",
        )
    )
    assert config["brokers"]["home"]["cert_file"] == str(certificates / "client.crt")


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [
        ({"ca_file": "missing.crt"}, "ca_file", "does not exist"),
        ({"cert_file": "missing.crt"}, "cert_file", "does not exist"),
        ({"cert_file": "client.crt", "key_file": "missing.key"}, "key_file", "does not exist"),
        ({"ca_file": "."}, "ca_file", "is not a file"),
        ({"ca_file": "garbage.pem"}, "ca_file", "not a usable CA certificate"),
        ({"cert_file": "garbage.pem"}, "cert_file", "not a usable client certificate"),
        ({"cert_file": "client.crt", "key_file": "ca.key"}, "cert_file", "not a usable"),
        ({"key_file": "client.key"}, "key_file", "needs the cert_file"),
    ],
)
def test_a_bad_tls_file_names_its_key(
    tmp_path: Path, certificates: Path, settings: dict[str, str], key: str, message: str
) -> None:
    files = {name: certificates / value for name, value in settings.items()}
    with pytest.raises(ConfigError) as info:
        loads(_broker(tmp_path, tls=True, **files))
    assert str(info.value).startswith(f"brokers.home.{key}: ")
    assert message in str(info.value)


def test_tls_files_are_not_read_while_tls_is_off(tmp_path: Path) -> None:
    config = loads(_broker(tmp_path, tls=False, ca_file=tmp_path / "missing.crt"))
    assert config["brokers"]["home"]["tls"] is False


# --- listen addresses and the dead-letter file ------------------------------------------------


@pytest.mark.parametrize(
    "listen",
    [
        "9847",
        ":9847",
        "localhost:",
        "localhost:http",
        "localhost:99999",
        "localhost:-1",
        "::1:9847",
        "[::1:9847",
        "[]:9847",
        "local host:9847",
        "127.0.0.1:9847 ",
        "127.0.0.1:٩٨٤٧",
        True,
        9847,
    ],
)
def test_a_bad_listen_address_names_the_key(listen: Any) -> None:
    with pytest.raises(ConfigError, match=r"^prometheus\.listen: "):
        validate({"prometheus": {"listen": listen}, "sources": [{"kind": "demo", "name": "d"}]})


@pytest.mark.parametrize(
    "listen", ["", "127.0.0.1:0", "localhost:9847", "[::1]:9847", "0.0.0.0:65535"]
)
def test_a_good_listen_address_is_kept(listen: str) -> None:
    config = validate(
        {"prometheus": {"listen": listen}, "sources": [{"kind": "demo", "name": "d"}]}
    )
    assert config["prometheus"]["listen"] == listen


def test_the_dead_letter_folder_must_exist(tmp_path: Path) -> None:
    demo = [{"kind": "demo", "name": "d"}]
    good = str(tmp_path / "dead.jsonl")
    assert validate({"dead_letter": good, "sources": demo})["dead_letter"] == good
    for bad, message in [
        (str(tmp_path / "missing" / "dead.jsonl"), "does not exist"),
        (str(tmp_path), "is a folder"),
        (5, "expected a file path"),
    ]:
        with pytest.raises(ConfigError, match=rf"^dead_letter: .*{message}"):
            validate({"dead_letter": bad, "sources": demo})


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://\ndtu.lan", "http://dtu .lan", "-dtu-.lan", "dtu..lan", "ftp://dtu"],
)
def test_an_opendtu_url_that_names_no_host_is_refused_naming_the_key(url: str) -> None:
    """The runner and the Home Assistant flow share http_url: neither takes these."""
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.url: "):
        validate({"sources": [{"kind": "opendtu", "name": "roof", "url": url}]})
