"""Proxmox/ZFS collection cost in the agent: ``python -m bench.proxmox [--rounds 20]``.

A medium-tier run of the zfs and pve collectors on a host with 100 guests and 3 pools,
the commands replaced by fake ``zpool``/``pvesh`` programs that print the fixtures (real
processes, first on PATH). The figure is the agent process's own CPU per collection
(``time.process_time``: the commands run as children, whose CPU it does not count),
including the outbox add, as a batch would pay it. Target: <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from custom_components.fleet_metrics.core.agent.agent import collect
from custom_components.fleet_metrics.core.agent.collectors import CollectorRun, CollectorSettings
from custom_components.fleet_metrics.core.agent.collectors.pve import PveCollector
from custom_components.fleet_metrics.core.agent.collectors.zfs import ZfsCollector
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from tests.fixtures.proxmox.fake_commands import FIXTURES, FakeCommands, pve_host

TARGET_MS = 50.0
GUESTS = 100


def hundred_guests(folder: Path) -> tuple[Path, Path]:
    """qemu and lxc lists with 100 guests between them, built from the fixtures' entries."""
    qemu = json.loads((FIXTURES / "pvesh_qemu.json").read_text(encoding="utf-8"))
    lxc = json.loads((FIXTURES / "pvesh_lxc.json").read_text(encoding="utf-8"))
    vms, cts = [], []
    for index in range(GUESTS):
        if index % 2:
            entry = dict(lxc[index % len(lxc)], vmid=str(1000 + index), name=f"ct{index}")
            cts.append(entry)
        else:
            entry = dict(qemu[index % len(qemu)], vmid=1000 + index, name=f"vm{index}")
            entry.pop("template", None)
            vms.append(entry)
    qemu_path, lxc_path = folder / "qemu.json", folder / "lxc.json"
    qemu_path.write_text(json.dumps(vms), encoding="utf-8")
    lxc_path.write_text(json.dumps(cts), encoding="utf-8")
    return qemu_path, lxc_path


def main(rounds: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fake = pve_host(FakeCommands(folder / "bin"))
        qemu, lxc = hundred_guests(folder)
        fake.answer("pvesh get /nodes/pve1/qemu --output-format json", qemu)
        fake.answer("pvesh get /nodes/pve1/lxc --output-format json", lxc)
        os.environ["PATH"] = fake.path_env()
        settings = CollectorSettings(pve_node="pve1", agent_version="bench")
        runs = [
            CollectorRun(ZfsCollector(settings, arcstats=str(FIXTURES / "arcstats.txt"))),
            CollectorRun(PveCollector(settings)),
        ]
        outbox = Outbox(10_000)
        cpu_ms, wall_ms = [], []
        samples = 0
        for _ in range(rounds + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            batch = collect(runs, time.time_ns())
            outbox.add(time.time(), batch)
            cpu_ms.append((time.process_time() - cpu) * 1000)
            wall_ms.append((time.perf_counter() - wall) * 1000)
            outbox.ack(outbox.next_seq - 1)
            samples = len(batch)
        cpu_ms, wall_ms = cpu_ms[1:], wall_ms[1:]  # the first pays for imports and caches
    guests = sum(1 for sample in batch if sample.measurement == "pve_guest")
    pools = sum(1 for sample in batch if sample.measurement == "zfs_pool")
    median = statistics.median(cpu_ms)
    print(f"medium-tier zfs + pve collection: {guests} guests, {pools} pools, {samples} samples")
    print(
        f"  agent CPU per collection (commands excluded): median {median:.2f} ms, "
        f"max {max(cpu_ms):.2f} ms over {rounds} rounds (target <= {TARGET_MS:.0f} ms)"
    )
    print(f"  wall time incl. the 5 fake commands: median {statistics.median(wall_ms):.0f} ms")
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    sys.exit(main(parser.parse_args().rounds))
