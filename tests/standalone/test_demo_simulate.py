"""``fleet-metrics simulate`` as a real process: what it prints is what Home Assistant's flows
need, and the core sources read every kind of simulated device from those addresses."""

from __future__ import annotations

import asyncio
import re
import signal

import voluptuous as vol
from fleet_metrics.core.backoff import Backoff
from fleet_metrics.core.mqtt.session import BrokerSession
from fleet_metrics.core.sample import Sample
from fleet_metrics.core.source import Source, SourceContext
from fleet_metrics.core.sources import KINDS

from .helpers import running
from .runner_process import RunnerProcess, processes  # noqa: F401 - the fixture

BROKER = re.compile(r"Tasmota devices:  host (\S+), port (\d+)")
DTU = re.compile(r"OpenDTU:          URL (\S+),")


async def test_simulate_prints_the_flows_and_every_kind_produces_samples(
    processes: list[RunnerProcess],  # noqa: F811
) -> None:
    sim = await RunnerProcess("simulate", "--broker-port", "0").start()
    processes.append(sim)
    await sim.wait_for(lambda: any("Host agents:" in line for line in sim.stdout_lines))
    printed = "\n".join(sim.stdout_lines)
    broker = BROKER.search(printed)
    dtu = DTU.search(printed)
    assert broker and dtu, printed
    assert "--agent-token TOKEN --agent-url ws://HA:8123/api/fleet_metrics/agent" in printed
    host, port = broker.group(1), int(broker.group(2))
    session = BrokerSession(
        "sim", {"host": host, "port": port}, backoff=Backoff(initial=0.05, maximum=0.2)
    )
    context = SourceContext({"sim": session})

    def source(kind: str, **settings: object) -> Source:
        config = vol.Schema(KINDS[kind].schema)(settings)
        return KINDS[kind].source_class(kind, {"kind": kind, "name": kind, **config}, context)

    sources = [
        source("tasmota", broker="sim", new_device_hold=0),
        source("tickrmeter", broker="sim", tick=0.5),
        source("opendtu", url=dtu.group(1), interval=0.5),
    ]
    samples: dict[str, list[Sample]] = {s.kind: [] for s in sources}
    async with running(session.run(), *(s.run(samples[s.kind].append) for s in sources)):
        async with asyncio.timeout(20):
            while not all(samples.values()) or not any(
                s.measurement == "tasmota_energy" for s in samples["tasmota"]
            ):
                await asyncio.sleep(0.05)
        # A status line every few seconds says what the simulators sent.
        await sim.wait_for(lambda: "messages sent" in sim.stderr, timeout=15)
    assert all(s.stats.parse_errors == 0 for s in sources)
    sim.signal(signal.SIGTERM)
    assert await sim.wait(timeout=10) == 0
    assert " ERROR " not in sim.stderr and "Traceback" not in sim.stderr
    assert " WARNING " not in sim.stderr, sim.stderr


async def test_simulate_with_an_agent_token_but_no_url_is_refused(
    processes: list[RunnerProcess],  # noqa: F811
) -> None:
    sim = await RunnerProcess("simulate", "--broker-port", "0", "--agent-token", "x").start()
    processes.append(sim)
    assert await sim.wait() == 2
    assert "--agent-url and --agent-token go together" in sim.stderr
    assert sim.stdout_lines == []
