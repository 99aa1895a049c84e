"""The server's own work per agent batch, in instructions: ``python -m bench.agent_instructions``.

``bench.agents`` times the whole runner against 1,000 agents, but on a small shared machine its
CPU figure moves by a third from run to run. This counts the instructions (valgrind's
callgrind, which is repeatable) that decoding a batch and applying it to the hub with its
line protocol take, for full samples and for rows of declared series, so that a change to that
path can be compared with the one before it. Each figure is (a run applying ``--batches``
batches) minus (the same run making the frames but applying none), per batch.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile

import orjson

from bench.agents import _rows, batch_shape, fast_batch
from custom_components.fleet_metrics.core.agent.protocol import (
    Declare,
    Hello,
    SeriesTable,
    decode,
)
from custom_components.fleet_metrics.core.sources.agents.hub import Hub
from custom_components.fleet_metrics.core.sources.agents.store import HostRecord


class _Connection:
    def close(self, code: int, reason: str) -> None: ...
    def send_ack(self, ack: object) -> None: ...
    def cancel(self) -> None: ...


def _apply(form: str, batches: int, apply: bool, samples: int) -> None:
    """Make ``batches`` frames of one host and, when ``apply``, decode and apply each."""
    shape = batch_shape(samples)
    ids: dict[tuple[object, ...], int] = {}
    declared: list[list[object]] = []
    frames = []
    for seq in range(1, batches + 2):
        wire = fast_batch(seq, 1.7e9 + seq, *shape)
        batch: dict[str, object] = {"type": "batch", "v": 1, "seq": seq, "time": 1.7e9 + seq}
        if form == "rows":
            batch["rows"] = _rows(wire, ids, declared)
        else:
            batch["samples"] = wire
        frames.append(orjson.dumps(batch))
    table = SeriesTable()
    if declared:
        declaration = decode(orjson.dumps({"type": "series", "v": 1, "series": declared}))
        assert isinstance(declaration, Declare)
        table.declare(declaration)
    hub = Hub()
    hub.set_emit(lambda sample: None, write_lines=lambda lines: None)
    hub.set_hosts({"h": HostRecord(name="h", token_hash="x", created=0.0)})
    state, connection = hub.hosts["h"], _Connection()
    hub.connect(state, connection, Hello("h", "bench", "boot", ()))
    for frame in frames[: 1 + (batches if apply else 0)]:  # the first makes the readings
        hub.apply(state, connection, decode(frame, table))  # type: ignore[arg-type]
        hub.pending_lines = 0


def _instructions(samples: int, form: str, batches: int, apply: bool) -> int:
    inner = ["--samples", str(samples), "--inner", form, str(batches), "1" if apply else "0"]
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             sys.executable, "-m", "bench.agent_instructions", *inner],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    match = re.search(r"Collected : (\d+)", run.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind:\n{run.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--samples", type=int, default=40, help="samples per batch")
    parser.add_argument("--inner", nargs=3, metavar=("FORM", "BATCHES", "APPLY"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.inner:
        form, batches, apply = args.inner
        _apply(form, int(batches), apply == "1", args.samples)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind)")
        return 1
    print(f"instructions per {args.samples}-sample batch: decode, apply to the hub, write lines")
    for form in ("full", "rows"):
        made = _instructions(args.samples, form, args.batches, apply=False)
        applied = _instructions(args.samples, form, args.batches, apply=True)
        label = "full samples" if form == "full" else "rows of declared series"
        print(f"  {label:<28} {(applied - made) / args.batches / 1e6:8.3f} M")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
