"""ZFS parsers: every fixture read as zpool printed it, and no input raises anything but
ZfsParseError (arbitrary text, truncated or garbled fixtures)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.agent.collectors.zfs_parse import (
    POOL_STATES,
    PoolUsage,
    ZfsParseError,
    parse_arcstats,
    parse_ctime,
    parse_nicenum,
    parse_zpool_list,
    parse_zpool_status_json,
    parse_zpool_status_text,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "proxmox"
TEXT = sorted(FIXTURES.glob("zpool_status_2.[12]_*.txt"))
JSON = sorted(FIXTURES.glob("zpool_status_2.3_*.json"))
ALL = [*TEXT, *JSON, FIXTURES / "zpool_list.txt", FIXTURES / "arcstats.txt"]
MAR_10_2024 = datetime(2024, 3, 10, tzinfo=UTC).timestamp()


def status(name: str) -> list:  # type: ignore[type-arg]
    path = FIXTURES / name
    if path.suffix == ".json":
        return parse_zpool_status_json(path.read_bytes())
    return parse_zpool_status_text(path.read_text(encoding="utf-8"), UTC)


def test_zpool_list_of_three_pools() -> None:
    pools = parse_zpool_list((FIXTURES / "zpool_list.txt").read_text(encoding="utf-8"))
    assert [pool.name for pool in pools] == ["rpool", "tank", "backup"]
    rpool, tank, backup = pools
    assert rpool.size_bytes == 498216206336
    assert rpool.allocated_bytes + rpool.free_bytes == rpool.size_bytes  # type: ignore[operator]
    assert (rpool.fragmentation_ratio, rpool.capacity_ratio) == (0.07, 0.12)
    assert tank.health == "DEGRADED"
    assert backup.dedup_ratio == 1.12


def test_zpool_list_dashes_and_the_old_ten_columns() -> None:
    (pool,) = parse_zpool_list("new\t1000\t-\t-\t-\t-\t-\t-\t1.00x\tFAULTED\t-\n")
    assert pool.allocated_bytes is None and pool.fragmentation_ratio is None
    assert pool.dedup_ratio == 1.0 and pool.health == "FAULTED"
    (old,) = parse_zpool_list("old  1000  10  990  -  5%  1%  1.00x  ONLINE  -")
    assert (old.size_bytes, old.fragmentation_ratio, old.capacity_ratio) == (1000, 0.05, 0.01)
    assert parse_zpool_list("") == []


@pytest.mark.parametrize(
    "line",
    [
        "rpool\t1\t2\t3",  # too few columns
        "rpool\tbig\t1\t1\t-\t-\t1\t1\t1.00\tONLINE\t-",  # not a number
        "rpool\t1\t1\t1\t-\t-\t1\t1\t1.00\tonline\t-",  # not a state
        "-rpool\t1\t1\t1\t-\t-\t1\t1\t1.00\tONLINE\t-",  # not a pool name
        "rpool\t1\t1\t1\t-\t-\t1\t1\tnan\tONLINE\t-",  # not a ratio
    ],
)
def test_zpool_list_rejects_what_it_cannot_read(line: str) -> None:
    with pytest.raises(ZfsParseError):
        parse_zpool_list(line)


@pytest.mark.parametrize("version", ["2.1", "2.3"])
def test_healthy_mirror_scrubbed(version: str) -> None:
    suffix = "json" if version == "2.3" else "txt"
    (pool,) = status(f"zpool_status_{version}_mirror.{suffix}")
    assert (pool.name, pool.state, pool.errors) == ("rpool", "ONLINE", 0)
    assert [vdev.name for vdev in pool.vdevs][:2] == ["rpool", "mirror-0"]
    assert len(pool.vdevs) == 4
    assert (pool.scan, pool.scan_state, pool.scan_errors, pool.scan_repaired_bytes) == (
        "scrub",
        "finished",
        0,
        0,
    )
    assert pool.scrub_end == MAR_10_2024 + 26 * 60 + 42


@pytest.mark.parametrize("version", ["2.1", "2.3"])
def test_raidz2_with_a_faulted_disk_and_errors(version: str) -> None:
    suffix = "json" if version == "2.3" else "txt"
    (pool,) = status(f"zpool_status_{version}_raidz2_degraded.{suffix}")
    assert pool.state == "DEGRADED"
    by_name = {vdev.name: vdev for vdev in pool.vdevs}
    faulted = by_name["wwn-0x5000c500a1b2c3d3"]
    assert (faulted.read, faulted.write, faulted.checksum) == (23, 1229, 0)  # 1.2K = 1.2 * 1024
    assert by_name["wwn-0x5000c500a1b2c3d2"].checksum == 2
    assert pool.errors == 23 + 1229 + 2
    # log and cache devices count; the spare (AVAIL, no counts) does not
    assert "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456-part1" in by_name
    assert "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456-part2" in by_name
    assert "wwn-0x5000c500a1b2c3d7" not in by_name
    assert len(pool.vdevs) == 10
    assert pool.scan_repaired_bytes == 1572864  # 1.50M
    assert pool.scrub_end == MAR_10_2024 + 7 * 3600 + 36 * 60 + 9


@pytest.mark.parametrize(
    "name", ["zpool_status_2.1_scrubbing.txt", "zpool_status_2.2_scrubbing.txt"]
)
def test_scrub_in_progress_text(name: str) -> None:
    (pool,) = status(name)
    assert (pool.scan, pool.scan_state) == ("scrub", "scanning")
    assert pool.scan_progress_ratio == pytest.approx(0.186)
    assert pool.scrub_end is None


def test_scrub_in_progress_json_progress_is_issued_over_total() -> None:
    (pool,) = status("zpool_status_2.3_scrubbing.json")
    assert (pool.scan, pool.scan_state) == ("scrub", "scanning")
    assert pool.scan_progress_ratio == pytest.approx(0.186, abs=0.001)  # as the text says


@pytest.mark.parametrize(
    "name", ["zpool_status_2.1_never_scrubbed.txt", "zpool_status_2.3_never_scrubbed.json"]
)
def test_never_scrubbed(name: str) -> None:
    (pool,) = status(name)
    assert (pool.scan, pool.scan_state, pool.scrub_end) == ("none", "none", None)
    assert [vdev.name for vdev in pool.vdevs] == ["scratch", "sdb"]


@pytest.mark.parametrize(
    "name", ["zpool_status_2.1_resilvered.txt", "zpool_status_2.3_resilvered.json"]
)
def test_finished_resilver_is_not_a_scrub(name: str) -> None:
    (pool,) = status(name)
    assert (pool.scan, pool.scan_state) == ("resilver", "finished")
    assert pool.scrub_end is None
    assert pool.scan_repaired_bytes == pytest.approx(1.21 * 2**40, rel=0.01)


def test_resilver_in_progress_with_a_replacing_vdev() -> None:
    (pool,) = status("zpool_status_2.1_resilvering.txt")
    assert (pool.state, pool.scan, pool.scan_state) == ("DEGRADED", "resilver", "scanning")
    assert pool.scan_progress_ratio == pytest.approx(0.1504)
    assert [vdev.name for vdev in pool.vdevs] == [
        "vault",
        "mirror-0",
        "replacing-0",
        "sdc",
        "sde",
        "sdd",
    ]


@pytest.mark.parametrize(
    "name", ["zpool_status_2.1_canceled.txt", "zpool_status_2.3_canceled.json"]
)
def test_canceled_scrub(name: str) -> None:
    (pool,) = status(name)
    assert (pool.scan, pool.scan_state, pool.scrub_end) == ("scrub", "canceled", None)


def test_manpage_json_with_string_numbers_and_classes() -> None:
    (pool,) = status("zpool_status_2.3_manpage.json")
    names = [vdev.name for vdev in pool.vdevs]
    assert names[:2] == ["tank", "raidz1-0"]
    assert "mirror-2" in names  # dedup class
    assert "25d418f8-92bd-4327-b59f-7ef5d5f50d81" in names  # special class
    assert (pool.scan, pool.errors) == ("none", 0)


def test_several_pools_in_one_text() -> None:
    text = "\n".join(
        (FIXTURES / name).read_text(encoding="utf-8")
        for name in ("zpool_status_2.1_mirror.txt", "zpool_status_2.1_raidz2_degraded.txt")
    )
    pools = parse_zpool_status_text(text, UTC)
    assert [(pool.name, pool.state) for pool in pools] == [
        ("rpool", "ONLINE"),
        ("tank", "DEGRADED"),
    ]
    assert parse_zpool_status_text("no pools available\n") == []


def test_local_time_is_the_default_zone() -> None:
    local = datetime(2024, 3, 10, 0, 26, 42).timestamp()  # naive: this host's zone
    assert parse_ctime("Sun Mar 10 00:26:42 2024") == local
    assert parse_ctime("Sun Mar  3 00:26:42 2024", UTC) == MAR_10_2024 - 7 * 86400 + 1602
    with pytest.raises(ZfsParseError):
        parse_ctime("Sun Feb 31 00:00:00 2024")


def test_arcstats() -> None:
    arc = parse_arcstats((FIXTURES / "arcstats.txt").read_text(encoding="utf-8"))
    assert (arc.size_bytes, arc.target_bytes) == (8398124864, 8472716288)
    assert (arc.min_bytes, arc.max_bytes) == (1052626432, 16842022912)
    with pytest.raises(ZfsParseError, match="header"):
        parse_arcstats("size 4 1\n")
    with pytest.raises(ZfsParseError, match="size"):
        parse_arcstats("name type data\nhits 4 1\n")


@given(st.integers(0, 2**62), st.sampled_from(["", "K", "M", "G", "T", "P"]))
@settings(max_examples=200, deadline=None)
def test_nicenum_round_trip(value: int, unit: str) -> None:
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}[unit]
    assert parse_nicenum(str(value)) == value
    shown = f"{value / scale:.2f}{unit}"
    assert parse_nicenum(shown) == pytest.approx(value, rel=0.01, abs=scale)


pools = st.builds(
    PoolUsage,
    name=st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True),
    size_bytes=st.none() | st.integers(0, 2**60),
    allocated_bytes=st.none() | st.integers(0, 2**60),
    free_bytes=st.none() | st.integers(0, 2**60),
    fragmentation_ratio=st.none() | st.integers(0, 100).map(lambda p: p / 100),
    capacity_ratio=st.none() | st.integers(0, 100).map(lambda p: p / 100),
    dedup_ratio=st.none() | st.integers(100, 10000).map(lambda p: p / 100),
    health=st.sampled_from(POOL_STATES),
)


def _row(pool: PoolUsage) -> str:
    def show(value: object, fmt: str = "{}") -> str:
        return "-" if value is None else fmt.format(value)

    def percent(ratio: float | None) -> str:
        return "-" if ratio is None else str(round(ratio * 100))

    return "\t".join(
        [
            pool.name,
            show(pool.size_bytes),
            show(pool.allocated_bytes),
            show(pool.free_bytes),
            "-",
            "-",
            percent(pool.fragmentation_ratio),
            percent(pool.capacity_ratio),
            show(pool.dedup_ratio, "{:.2f}"),
            pool.health,
            "-",
        ]
    )


@given(st.lists(pools, max_size=5))
@settings(max_examples=100, deadline=None)
def test_zpool_list_round_trip(generated: list[PoolUsage]) -> None:
    text = "".join(_row(pool) + "\n" for pool in generated)
    assert parse_zpool_list(text) == generated


def _never_raises_other_than_parse_error(text: str) -> None:
    for parse in (
        parse_zpool_list,
        parse_zpool_status_text,
        parse_arcstats,
        parse_zpool_status_json,
    ):
        with contextlib.suppress(ZfsParseError):
            parse(text)


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_raises_only_parse_errors(text: str) -> None:
    _never_raises_other_than_parse_error(text)


@given(st.sampled_from(ALL), st.data())
@settings(max_examples=300, deadline=None)
def test_truncated_or_garbled_fixtures_raise_only_parse_errors(
    path: Path, data: st.DataObject
) -> None:
    text = path.read_text(encoding="utf-8")
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=20))
    at = data.draw(st.integers(0, cut))
    _never_raises_other_than_parse_error(text[:at] + junk + text[at:cut])


# Numbers a parser must refuse with ZfsParseError: longer than int() converts (4300 digits)
# or than a float holds, and digits of other scripts ("²" passes isdigit(), int() refuses it;
# "٣" passes both, which zpool never prints).
long_digits = st.from_regex(r"\d{300,5000}(\.\d)?", fullmatch=True)
foreign_digits = st.text(
    st.characters(categories=["Nd", "No"], exclude_characters="0123456789"),
    min_size=1,
    max_size=6,
)
odd_numbers = long_digits | foreign_digits | st.just("99999999999999999999999")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats()
    | st.text(max_size=10)
    | odd_numbers,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=15,
)
_KEYS = [
    "name",
    "state",
    "vdevs",
    "read_errors",
    "write_errors",
    "checksum_errors",
    "scan_stats",
    "function",
    "end_time",
]


@given(
    st.dictionaries(
        st.sampled_from(_KEYS) | st.text(max_size=6),
        json_values,
        max_size=5,
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
@settings(max_examples=120, deadline=None)
def test_arbitrary_json_status_raises_only_parse_errors(pool: dict, vdev: dict) -> None:  # type: ignore[type-arg]
    pool = {**pool, "vdevs": {"x": {**vdev, "vdevs": pool.get("vdevs")}}}
    document = {"output_version": {}, "pools": {"p": pool}}
    with contextlib.suppress(ZfsParseError):
        parse_zpool_status_json(json.dumps(document, allow_nan=True))


@given(odd_numbers, st.sampled_from(["", "K", "T", "B", "%", "x"]))
@settings(max_examples=60, deadline=None)
def test_odd_numbers_in_every_numeric_position_raise_only_parse_errors(
    number: str, suffix: str
) -> None:
    text = number + suffix
    with contextlib.suppress(ZfsParseError):
        parse_nicenum(text)
    for column in range(1, 9):  # size alloc free ckpoint expandsz frag cap dedup
        row = ["tank", "1", "1", "1", "-", "-", "1", "1", "1.00", "ONLINE", "-"]
        row[column] = text
        with contextlib.suppress(ZfsParseError):
            parse_zpool_list("\t".join(row))
    config = "config:\n\n\tNAME STATE READ WRITE CKSUM\n\ttank ONLINE {} 0 {}\n\n"
    scan = "  scan: scrub repaired {} in 00:01:00 with {} errors on Sun Mar 10 00:25:24 2024\n"
    head = "  pool: tank\n state: ONLINE\n"
    for filled in (
        head + scan.format("0B", text) + config.format(0, 0),
        head + scan.format(text, 0) + config.format(0, 0),
        head + config.format(text, text),
        head + "  scan: scrub in progress since Sun Mar 10 00:25:24 2024\n"
        f"\t1G scanned, {text}% done\n" + config.format(0, 0),
    ):
        with contextlib.suppress(ZfsParseError):
            parse_zpool_status_text(filled, UTC)
    with contextlib.suppress(ZfsParseError):
        parse_arcstats(f"x\nname type data\nsize 4 {text}\nc 4 {text}\n")
    vdev = {"name": "tank", "read_errors": text, "write_errors": 0, "checksum_errors": 0}
    scan_stats = {"function": "SCRUB", "state": "FINISHED", "end_time": text, "errors": text}
    document = {"output_version": {}, "pools": {"tank": {
        "name": "tank", "state": "ONLINE", "vdevs": {"tank": vdev}, "scan_stats": scan_stats,
    }}}  # fmt: skip
    with contextlib.suppress(ZfsParseError):
        parse_zpool_status_json(json.dumps(document))


def test_a_count_beyond_64_bits_is_no_count() -> None:
    """zpool printing 10**23 bytes (a garbled line) must not reach the wire, where JSON and
    line protocol hold 64 bits."""
    with pytest.raises(ZfsParseError):
        parse_zpool_list("tank\t99999999999999999999999\t1\t1\t-\t-\t1\t1\t1.00\tONLINE\t-")
    with pytest.raises(ZfsParseError):
        parse_nicenum("9000000Z")
    assert parse_nicenum(str(2**63 - 1)) == 2**63 - 1
    (pool,) = parse_zpool_status_json(
        json.dumps(
            {
                "output_version": {},
                "pools": {
                    "tank": {
                        "name": "tank",
                        "state": "ONLINE",
                        "scan_stats": {
                            "function": "SCRUB",
                            "state": "FINISHED",
                            "end_time": "²",
                            "errors": 0,
                        },
                    }
                },
            }
        )
    )
    assert pool.scrub_end is None


# The shape of zpool-status(8)'s examples and of a real failing disk: one unrecoverable
# read is counted on the disk, on its raidz and on the pool's root row.
ERRORS_AT_EVERY_LEVEL = """\
  pool: tank
 state: DEGRADED
config:

\tNAME        STATE     READ WRITE CKSUM
\ttank        DEGRADED     1     0     4
\t  raidz1-0  DEGRADED     1     0     8
\t    sda     ONLINE       0     0     2
\t    sdb     FAULTED      3     0     2  too many errors
\t    sdc     ONLINE       0     0     0
\t  mirror-1  ONLINE       0     0     0
\t    sdd     ONLINE       0     0     0
\t    sde     ONLINE       0     5     0
\tlogs
\t  nvme0n1   ONLINE       0     0     1
\tspares
\t  sdf       AVAIL

errors: No known data errors
"""


def test_pool_errors_sum_the_leaf_vdevs_only() -> None:
    (pool,) = parse_zpool_status_text(ERRORS_AT_EVERY_LEVEL)
    assert pool.errors == 2 + 3 + 2 + 5 + 1
    leaves = {vdev.name for vdev in pool.vdevs if vdev.leaf}
    assert leaves == {"sda", "sdb", "sdc", "sdd", "sde", "nvme0n1"}

    # the same tree as zpool status -j prints it
    def disk(name: str, read: int, write: int, cksum: int) -> dict[str, object]:
        return {"name": name, "read_errors": read, "write_errors": write,
                "checksum_errors": cksum}  # fmt: skip

    raidz = {
        **disk("raidz1-0", 1, 0, 8),
        "vdevs": {
            "sda": disk("sda", 0, 0, 2),
            "sdb": disk("sdb", 3, 0, 2),
            "sdc": disk("sdc", 0, 0, 0),
        },
    }
    mirror = {
        **disk("mirror-1", 0, 0, 0),
        "vdevs": {"sdd": disk("sdd", 0, 0, 0), "sde": disk("sde", 0, 5, 0)},
    }
    root = {**disk("tank", 1, 0, 4), "vdevs": {"raidz1-0": raidz, "mirror-1": mirror}}
    document = {"output_version": {}, "pools": {"tank": {
        "name": "tank", "state": "DEGRADED", "vdevs": {"tank": root},
        "logs": {"nvme0n1": disk("nvme0n1", 0, 0, 1)}}}}  # fmt: skip
    (from_json,) = parse_zpool_status_json(json.dumps(document))
    assert from_json.errors == pool.errors
    assert {vdev.name for vdev in from_json.vdevs if vdev.leaf} == leaves
