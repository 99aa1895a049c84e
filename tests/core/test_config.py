from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.config import ConfigError, load, loads

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
    assert config["prometheus"] == {"listen": "127.0.0.1:0", "ttl": 300.0}
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
