from __future__ import annotations

import orjson
import pytest

from custom_components.fleet_metrics.core.sources.tickrmeter.correlator import Correlator
from custom_components.fleet_metrics.core.sources.tickrmeter.fleet import Fleet
from custom_components.fleet_metrics.core.sources.tickrmeter.tracker import FleetTracker, Topics

# The message shapes from the fleet's documentation (issue #4).
REQUEST = b'{"type":"UPDATE","device":"08A6F792DD5C","symbol":"AAPL"}'
ANSWER = b'{"symbol":"AAPL","price":"$118593","type":"UPDATE"}'
STATUS = (
    b'{"status":"online","firmware_version":"62p","device":"EC6260314DD0","battery":"78",'
    b'"iv":"3","flash_id":"c84016","charging":"1","vin":"4.9","uptime":"3600","wifi_lost":2,'
    b'"unknown_field":{"nested":true}}'
)
BOOT = b'{"type":"BOOT","device":"4022D8E2FB0C"}'
STREAM = b'{"device":"4022D8ECC94C","params":{"symbols":["AAPL"]}}'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> FleetTracker:
    return FleetTracker(Correlator(clock=clock), Fleet(clock=clock))


def test_request_and_answer_on_the_device_topic(tracker: FleetTracker, clock: Clock) -> None:
    tracker.handle("STOCKPRICEUPDATE", REQUEST)
    clock.now += 0.4
    tracker.handle("08A6F792DD5C", ANSWER)
    stats = tracker.correlator.symbols["AAPL"]
    assert (stats.requests, stats.responses) == (1, 1)
    assert stats.latency.summary().maximum == pytest.approx(0.4)
    assert tracker.fleet.devices["08A6F792DD5C"].last_seen == clock.now


def test_status_maps_the_field_table_and_accepts_numbers_as_strings(
    tracker: FleetTracker,
) -> None:
    tracker.handle("DEVICESTATUS_RES", STATUS)
    device = tracker.fleet.devices["EC6260314DD0"]
    assert device.firmware == "62p"
    assert device.inner_version == "3"
    assert device.flash_id == "c84016"
    assert device.battery == 78.0
    assert device.charging is True
    assert device.vin == 4.9
    assert device.uptime == 3600.0
    assert device.wifi_lost == 2.0
    assert tracker.malformed == 0


def test_boots_and_stream_requests(tracker: FleetTracker) -> None:
    tracker.handle("TICKRMETERBOOT", BOOT)
    tracker.handle("DEVICE_BOOTED", BOOT)
    tracker.handle("HTTPSTREAMSTOCKS", STREAM)
    assert tracker.fleet.devices["4022D8E2FB0C"].boots == 2
    assert "4022D8ECC94C" in tracker.fleet.devices
    assert tracker.counts.received == {"boot": 2, "stream": 1}


def test_custom_topics_and_field_table(clock: Clock) -> None:
    fleet = Fleet(status_fields={"fw": "firmware", "bat": "battery"}, clock=clock)
    tracker = FleetTracker(Correlator(clock=clock), fleet, Topics(status="status/res"))
    tracker.handle("status/res", b'{"device":"EC6260314DD0","fw":"70","bat":12}')
    device = fleet.devices["EC6260314DD0"]
    assert (device.firmware, device.battery) == ("70", 12.0)
    assert "status/res" in tracker.topics.filters()
    with pytest.raises(ValueError, match="unknown device fields"):
        Fleet(status_fields={"x": "colour"})


def test_online_summary_and_forgetting(clock: Clock) -> None:
    fleet = Fleet(device_timeout=300, forget_after=3600, clock=clock)
    tracker = FleetTracker(Correlator(clock=clock), fleet)
    for i, (firmware, battery, charging) in enumerate(
        [("62p", "78", "1"), ("62p", "15", "0"), ("70", "9", 1)]
    ):
        body = {"device": f"AAAAAAAAAA{i:02d}", "firmware_version": firmware}
        body |= {"battery": battery, "charging": charging}
        tracker.handle("DEVICESTATUS_RES", orjson.dumps(body))
    clock.now += 200
    tracker.handle("DEVICESTATUS_RES", b'{"device":"AAAAAAAAAA00","battery":"77"}')
    clock.now += 200  # device 00 seen 200 s ago, the others 400 s ago
    summary = fleet.summary()
    assert (summary.devices, summary.online) == (3, 1)
    assert summary.by_firmware == {"62p": 1}
    assert summary.charging == {"yes": 1}
    clock.now -= 200
    summary = fleet.summary()
    assert summary.online == 3
    assert summary.low_battery == 2
    assert summary.by_firmware == {"62p": 2, "70": 1}
    clock.now += 3601
    assert fleet.forget_stale() == 3
    assert fleet.devices == {}


@pytest.mark.parametrize(
    ("topic", "payload", "kind"),
    [
        ("STOCKPRICEUPDATE", b"{not json", "request"),
        ("STOCKPRICEUPDATE", b'{"device":"08A6F792DD5C"}', "request"),
        ("STOCKPRICEUPDATE", b'{"device":"nope","symbol":"AAPL"}', "request"),
        ("STOCKPRICEUPDATE", b'["device"]', "request"),
        ("08A6F792DD5C", b'{"price":"$1"}', "response"),
        ("08A6F792DD5C", b'{"symbol":42}', "response"),
        ("08A6F792DD5C", b"\xff\xfe", "response"),
        ("DEVICESTATUS_RES", b'{"firmware_version":"62p"}', "status"),
        ("DEVICESTATUS_RES", b"null", "status"),
        ("TICKRMETERBOOT", b'{"type":"BOOT"}', "boot"),
        ("DEVICE_BOOTED", b"", "boot"),
        ("HTTPSTREAMSTOCKS", b'{"device":12345}', "stream"),
    ],
)
def test_malformed_messages_of_every_kind_are_counted_and_skipped(
    tracker: FleetTracker, topic: str, payload: bytes, kind: str
) -> None:
    tracker.handle(topic, payload)
    assert tracker.counts.malformed == {kind: 1}
    assert tracker.correlator.symbols.get("AAPL") is None
    tracker.handle("STOCKPRICEUPDATE", REQUEST)
    assert tracker.correlator.symbols["AAPL"].requests == 1


def test_bad_values_inside_a_good_status_are_skipped(tracker: FleetTracker) -> None:
    tracker.handle(
        "DEVICESTATUS_RES",
        b'{"device":"EC6260314DD0","battery":"full","charging":"maybe","vin":true,'
        b'"firmware_version":{"x":1},"uptime":"12"}',
    )
    device = tracker.fleet.devices["EC6260314DD0"]
    assert (device.battery, device.charging, device.vin, device.firmware) == (
        None,
        None,
        None,
        None,
    )
    assert device.uptime == 12.0
    assert tracker.malformed == 0


def test_other_topics_are_ignored(tracker: FleetTracker) -> None:
    tracker.handle("tele/plug/SENSOR", b"{}")
    tracker.handle("ZZZZZZZZZZZZ", b"{}")
    assert tracker.counts.received == {}


def test_unit_suffixes_on_status_numbers(tracker: FleetTracker) -> None:
    tracker.handle("DEVICESTATUS_RES", b'{"device":"EC6260314DD0","battery":"78%","vin":"4.9V"}')
    device = tracker.fleet.devices["EC6260314DD0"]
    assert (device.battery, device.vin) == (78.0, 4.9)
