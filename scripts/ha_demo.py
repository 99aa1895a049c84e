"""``make ha-demo``: a real Home Assistant with the simulated fleet added through the UI's flows.

Builds ``.venv-ha`` once (the pinned Home Assistant, its frontend and this project), writes a
config folder under ``build/ha-demo``, starts ``fleet-metrics simulate`` and ``hass``, onboards a
user and adds a Tasmota, an OpenDTU, a TickrMeter and a "Host agents" entry (with this machine as
its host) through the same REST flow API the frontend uses, then starts ``fleet-metrics agent``
with the token the host flow showed. A second run reuses all of it. Ctrl-C or SIGTERM stops
everything. Not part of ``make test``: it downloads Home Assistant and runs for as long as wanted.

Runs first on any Python 3.13 (standard library only) to build the venv, then re-executes itself
inside the venv, where aiohttp (Home Assistant's own client) talks to Home Assistant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-ha"
STAMP = VENV / ".installed"
BUILD = REPO / "build" / "ha-demo"
CONFIG = BUILD / "config"
STATE = BUILD / "state.json"
AGENT_TOML = BUILD / "agent.toml"
HA_LOG = CONFIG / "home-assistant.log"

# aiodns 3.2 (pinned by this Home Assistant) breaks on pycares 5: keep pycares below it.
HA_REQUIREMENTS = (
    "homeassistant==2025.4.4",
    "pycares<5",
    "home-assistant-frontend==20250411.0",
)
USERNAME = "demo"
PASSWORD = "demo"
DOMAIN = "fleet_metrics"
AGENT_PATH = "/api/fleet_metrics/agent"
# The agent's collector tiers, short so that the first minute shows every one (as the
# simulator's own agent does).
AGENT_INTERVALS = {"fast": 5.0, "medium": 15.0, "slow": 60.0}
HA_START_TIMEOUT = 600.0  # generous: a first start on a slow disk, or HA installing a package
STOP_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1  # prctl(2)
# Onboarding steps other than the user: HA's core_config step also sets up met,
# google_translate, radio_browser and shopping_list, which need downloads and the internet and
# show nothing of this project. They are marked done before the first start instead.
ONBOARDING_SKIPPED = ("core_config", "analytics", "integration")


def say(message: str) -> None:
    print(f"ha-demo: {message}", flush=True)


class DemoError(Exception):
    """The demo cannot go on; the message says what to look at."""


# --- the venv ------------------------------------------------------------------------------


def project_requirements() -> list[str]:
    """The runtime dependencies and the demo extra (amqtt) from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["demo"]]


def venv_fingerprint() -> str:
    """What the stamp records: a changed pin or dependency rebuilds the venv."""
    wanted = [sys.version.split()[0], *HA_REQUIREMENTS, *project_requirements()]
    return hashlib.sha256("\n".join(wanted).encode()).hexdigest()


def pip(*args: str) -> None:
    """pip in the venv, quiet unless it fails (an editable install warns at length)."""
    run = subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        for line in (run.stdout + run.stderr).splitlines():
            if not line.startswith("WARNING: Location"):
                print(line, file=sys.stderr)
        raise DemoError(f"pip {' '.join(args)} failed ({run.returncode})")


def ensure_venv() -> None:
    """Build .venv-ha unless its stamp matches: Home Assistant in one resolve with this
    project's dependencies under HA's constraints (so HA's pins win), then the project itself
    without dependencies."""
    fingerprint = venv_fingerprint()
    if STAMP.is_file() and STAMP.read_text().strip() == fingerprint:
        return
    if sys.version_info < (3, 13):
        raise DemoError(f"Home Assistant 2025.4 needs Python 3.13, this is {sys.version}")
    say(f"building {VENV.name} (Home Assistant and its frontend: a few minutes, once)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip("install", "--upgrade", "pip")
    # HA's own pins first: without them pip backtracks through sdist builds of the bluetooth
    # stack (still at it after 3 minutes here); HA installs its components' requirements
    # under the same constraints.
    pip("install", "--no-deps", HA_REQUIREMENTS[0])
    constraints = next(
        VENV.glob("lib/python3.*/site-packages/homeassistant/package_constraints.txt")
    )
    pip("install", "--constraint", str(constraints), *HA_REQUIREMENTS, *project_requirements())
    pip("install", "--no-deps", "-e", str(REPO))
    STAMP.write_text(fingerprint + "\n")
    say(f"{VENV.name} ready in {time.monotonic() - started:.0f} s")


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# --- the config folder ---------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class State:
    """What a second run reuses: the ports the entries point at and the entries made."""

    broker_port: int = 0
    dtu_port: int = 0
    entries: dict[str, str] = field(default_factory=dict)  # kind -> entry id

    @classmethod
    def load(cls) -> State:
        try:
            raw = json.loads(STATE.read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            broker_port=int(raw.get("broker_port", 0)),
            dtu_port=int(raw.get("dtu_port", 0)),
            entries={str(k): str(v) for k, v in raw.get("entries", {}).items()},
        )

    def save(self) -> None:
        STATE.write_text(
            json.dumps(
                {
                    "broker_port": self.broker_port,
                    "dtu_port": self.dtu_port,
                    "entries": self.entries,
                },
                indent=2,
            )
            + "\n"
        )

    def pick_ports(self) -> None:
        """Keep the ports the entries were made with; a taken one is replaced (its entries
        are then made again and the old ones removed)."""
        if not self.broker_port or not port_is_free(self.broker_port):
            self.broker_port = free_port()
        if not self.dtu_port or not port_is_free(self.dtu_port):
            self.dtu_port = free_port()
            while self.dtu_port == self.broker_port:
                self.dtu_port = free_port()


def configuration_yaml(port: int, history: bool) -> str:
    """Enough for the UI (``frontend`` pulls in onboarding, the API and the websocket); the
    internal URL is what the host flow shows in the agent config."""
    lines = [
        "# Written by scripts/ha_demo.py on every run: change the script, not this file.",
        "homeassistant:",
        "  name: Fleet Metrics demo",
        f"  internal_url: http://127.0.0.1:{port}",
        "frontend:",
        "config:",
        "http:",
        "  server_host: 127.0.0.1",
        f"  server_port: {port}",
        "logger:",
        "  default: warning",
        "  logs:",
        "    custom_components.fleet_metrics: info",
    ]
    if history:
        lines.append("history:")
    return "\n".join(lines) + "\n"


def prepare_config(port: int, history: bool) -> None:
    CONFIG.mkdir(parents=True, exist_ok=True)
    (CONFIG / "configuration.yaml").write_text(configuration_yaml(port, history))
    custom = CONFIG / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / DOMAIN
    target = REPO / "custom_components" / DOMAIN
    if not (link.is_symlink() and link.resolve() == target.resolve()):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    onboarding = CONFIG / ".storage" / "onboarding"
    if not onboarding.exists():
        onboarding.parent.mkdir(exist_ok=True)
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": list(ONBOARDING_SKIPPED)},
                }
            )
        )


# --- the processes -------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    offset: int  # the log's size at the start: earlier runs' lines are not this run's


def stop_with_parent() -> None:
    """In the child before exec: SIGTERM when this script dies, even by SIGKILL (Linux), so
    that no Home Assistant is left running on the config folder."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class Children:
    """The processes this run started, stopped in reverse order (the agent and HA before the
    fleet they read, so that neither logs the fleet going away)."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    async def start(self, name: str, argv: Sequence[str], log: Path) -> Child:
        offset = size_of(log)
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,  # Ctrl-C reaches this script only; it stops them in order
                preexec_fn=stop_with_parent,
            )
        child = Child(name, process, log, offset)
        self.children.append(child)
        return child

    async def first_exit(self) -> Child:
        """The first child to exit (runs until one does)."""
        waits = {asyncio.ensure_future(c.process.wait()): c for c in self.children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return waits[next(iter(done))]

    async def stop(self) -> None:
        for child in reversed(self.children):
            process = child.process
            if process.returncode is not None:
                continue
            say(f"stopping {child.name}")
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                say(f"{child.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
                process.kill()
                await process.wait()
        self.children.clear()


async def within(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """``awaitable``, or a DemoError saying what did not happen in time."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError as err:
        raise DemoError(f"{what} within {seconds:.0f} s") from err


async def wait_for_line(child: Child, marker: str) -> None:
    """Until ``marker`` appears in what the child wrote to its log."""
    while True:
        with child.log.open("rb") as log:
            log.seek(child.offset)
            if marker.encode() in log.read():
                return
        if child.process.returncode is not None:
            raise DemoError(f"{child.name} exited ({child.process.returncode}); see {child.log}")
        await asyncio.sleep(0.2)


# --- Home Assistant's REST and websocket API -----------------------------------------------


class HomeAssistantApi:
    """The calls the frontend makes for onboarding, login and the config flows."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.client_id = base + "/"
        self.token = ""

    async def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise DemoError(f"{method} {path}: HTTP {response.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def wait_until_up(self, hass: Child) -> None:
        """Until the HTTP server answers at all (it starts once the frontend is set up)."""
        import aiohttp

        while True:
            if hass.process.returncode is not None:
                raise DemoError(
                    f"hass exited ({hass.process.returncode}); see {hass.log}, {HA_LOG}"
                )
            with contextlib.suppress(aiohttp.ClientError):
                # The frontend's manifest needs no login (a request to /api/ without one
                # would be logged as a failed login).
                async with self.session.get(self.base + "/manifest.json"):
                    return
            await asyncio.sleep(1.0)

    async def wait_until_running(self) -> None:
        while True:
            if (await self.call("GET", "/api/config"))["state"] == "RUNNING":
                return
            await asyncio.sleep(1.0)

    async def log_in(self) -> None:
        """Onboard the demo user on the first run, log in with the login flow afterwards."""
        async with self.session.get(self.base + "/api/onboarding") as response:
            # Once onboarded, HA no longer serves the onboarding views at all.
            steps = await response.json() if response.status == 200 else []
        if any(step["step"] == "user" and not step["done"] for step in steps):
            say(f"onboarding user {USERNAME!r}")
            onboarded = await self.call(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": "Demo",
                    "username": USERNAME,
                    "password": PASSWORD,
                    "language": "en",
                },
                auth=False,
            )
            code = onboarded["auth_code"]
        else:
            flow = await self.call(
                "POST",
                "/auth/login_flow",
                {
                    "client_id": self.client_id,
                    "handler": ["homeassistant", None],
                    "redirect_uri": self.client_id,
                },
                auth=False,
            )
            result = await self.call(
                "POST",
                f"/auth/login_flow/{flow['flow_id']}",
                {"username": USERNAME, "password": PASSWORD, "client_id": self.client_id},
                auth=False,
            )
            if result.get("type") != "create_entry":
                raise DemoError(f"cannot log in as {USERNAME!r}: {result.get('errors')}")
            code = result["result"]
        async with self.session.post(
            self.base + "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
        ) as response:
            if response.status != 200:
                raise DemoError(f"/auth/token: HTTP {response.status}: {await response.text()}")
            self.token = (await response.json())["access_token"]

    async def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command (what REST does not offer: subentries, the entity registry)."""
        async with self.session.ws_connect(self.base + "/api/websocket") as socket_:
            await socket_.receive_json()  # auth_required
            await socket_.send_json({"type": "auth", "access_token": self.token})
            if (await socket_.receive_json())["type"] != "auth_ok":
                raise DemoError("websocket authentication failed")
            await socket_.send_json({"id": 1, **message})
            reply = await socket_.receive_json()
            if not reply.get("success"):
                raise DemoError(f"websocket {message['type']}: {reply.get('error')}")
            return reply["result"]

    async def entries(self) -> dict[str, dict[str, Any]]:
        found = await self.call("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
        return {entry["entry_id"]: entry for entry in found}

    async def step(self, path: str, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        """One step of a flow; a form shown again with errors is a failed step."""
        result: dict[str, Any] = await self.call("POST", f"{path}/{flow_id}", user_input)
        if result.get("errors"):
            raise DemoError(
                f"flow step {result.get('step_id')} refused {user_input}: {result['errors']}"
                f" (see {HA_LOG})"
            )
        return result


ENTRY_FLOW = "/api/config/config_entries/flow"
SUBENTRY_FLOW = "/api/config/config_entries/subentries/flow"


# --- adding the fleet ----------------------------------------------------------------------


def kind_inputs(state: State) -> dict[str, dict[str, Any]]:
    """What a user types into each kind's form for the simulated fleet (the rest default)."""
    broker = {"host": "127.0.0.1", "port": state.broker_port}
    return {
        "tasmota": broker,
        "opendtu": {"url": f"http://127.0.0.1:{state.dtu_port}"},
        "tickrmeter": broker,
        "agents": {},
    }


async def add_entry(
    api: HomeAssistantApi, kind: str, user_input: dict[str, Any]
) -> dict[str, Any] | None:
    """The user flow: the menu, then the kind's form. The new entry, or None when the flow
    found it already there (it aborts by unique id)."""
    menu = await api.call("POST", ENTRY_FLOW, {"handler": DOMAIN, "show_advanced_options": False})
    if kind not in menu.get("menu_options", []):
        raise DemoError(f"the flow offers no {kind!r}: {menu}")
    form = await api.step(ENTRY_FLOW, menu["flow_id"], {"next_step_id": kind})
    result = (
        form if form["type"] == "abort" else await api.step(ENTRY_FLOW, form["flow_id"], user_input)
    )
    if result["type"] == "create_entry":
        entry: dict[str, Any] = result["result"]
        return entry
    if result["type"] == "abort" and result.get("reason") in (
        "already_configured",
        "single_instance_allowed",
    ):
        return None
    raise DemoError(f"the {kind} flow ended with {result}")


async def add_fleet(api: HomeAssistantApi, state: State, changed: set[str]) -> str:
    """Each kind's entry unless it exists (with the ports it was made for); returns the
    "Host agents" entry's id."""
    entries = await api.entries()
    for kind, user_input in kind_inputs(state).items():
        recorded = state.entries.get(kind)
        if recorded in entries and kind not in changed:
            continue
        entry = await add_entry(api, kind, user_input)
        if entry is None:
            entries = await api.entries()
            entry_id = recorded if recorded in entries else find_entry(entries, kind)
            say(f"{kind}: already added")
        else:
            entry_id = entry["entry_id"]
            say(f"{kind}: added {entry['title']!r} ({entry['state']})")
            if recorded in entries and recorded != entry_id:
                await api.call("DELETE", f"/api/config/config_entries/entry/{recorded}")
                say(f"{kind}: removed the entry for the old port")
        if entry_id:
            state.entries[kind] = entry_id
        state.save()
    agents = state.entries.get("agents")
    if not agents:
        raise DemoError("no Host agents entry")
    return agents


def find_entry(entries: dict[str, dict[str, Any]], kind: str) -> str | None:
    """An entry made before this script kept a record of it: by the host subentry type for
    the agents, by the flow's title for the others."""
    titles = {"tasmota": "Tasmota", "tickrmeter": "TickrMeter fleet", "opendtu": "OpenDTU-Demo"}
    for entry_id, entry in entries.items():
        if kind == "agents" and "host" in entry.get("supported_subentry_types", {}):
            return entry_id
        if entry.get("title") == titles.get(kind):
            return entry_id
    return None


async def host_token(api: HomeAssistantApi, agents_entry: str, name: str) -> str:
    """The host's token from the saved agent config; else from the host flow (a new host) or
    its "new token" flow (a host whose token was lost: HA keeps only its hash)."""
    subentries = await api.ws({"type": "config_entries/subentries/list", "entry_id": agents_entry})
    existing = next((s for s in subentries if s["title"] == name), None)
    if existing and AGENT_TOML.is_file():
        saved = tomllib.loads(AGENT_TOML.read_text())
        if saved.get("host") == name and saved.get("servers"):
            token: str = saved["servers"][0]["token"]
            return token
    handler: dict[str, Any] = {"handler": [agents_entry, "host"]}
    if existing:
        handler["subentry_id"] = existing["subentry_id"]
    shown = await api.call("POST", SUBENTRY_FLOW, handler)
    # Add: the name, then the token. New token: the reconfigure menu's "new_token", a
    # confirmation, then the token.
    for _ in range(4):
        token = (shown.get("description_placeholders") or {}).get("token", "")
        if token:
            break
        if shown["type"] == "menu" and "new_token" in shown["menu_options"]:
            user_input: dict[str, Any] = {"next_step_id": "new_token"}
        elif shown["type"] == "form":
            user_input = {} if existing else {"host": name}
        else:
            raise DemoError(f"the host flow showed no token: {shown}")
        shown = await api.step(SUBENTRY_FLOW, shown["flow_id"], user_input)
    else:
        raise DemoError(f"the host flow showed no token: {shown}")
    done = await api.step(SUBENTRY_FLOW, shown["flow_id"], {})
    if done["type"] not in ("create_entry", "abort"):
        raise DemoError(f"the host flow ended with {done}")
    say(f"host {name}: {'new token' if existing else 'added'} under Host agents")
    return token


def host_name() -> str:
    """This machine's name as the host flow accepts it (what ``fleet-metrics simulate``
    calls it too); the flow itself has the last word."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:63]
    return name if name[:1].isalnum() else "demo-host"


def agent_toml(name: str, url: str, token: str) -> str:
    """The config the host flow shows, with the demo's short collector intervals."""
    intervals = "".join(f"{tier} = {seconds}\n" for tier, seconds in AGENT_INTERVALS.items())
    return (
        f'host = "{name}"\n\n[[servers]]\nurl = "{url}"\ntoken = "{token}"\n\n'
        f"[intervals]\n{intervals}"
    )


async def summary(api: HomeAssistantApi, state: State) -> str:
    """Entities per kind (entity registry), how many are enabled and have a value
    (/api/states), and what HA logged about the integration."""
    registry = await api.ws({"type": "config/entity_registry/list"})
    states = {s["entity_id"]: s["state"] for s in await api.call("GET", "/api/states")}
    kinds = {entry_id: kind for kind, entry_id in state.entries.items()}
    counts: dict[str, list[int]] = {kind: [0, 0, 0] for kind in state.entries}
    for entity in registry:
        kind = kinds.get(entity.get("config_entry_id"))
        if kind is None:
            continue
        counts[kind][0] += 1
        if entity.get("disabled_by"):
            continue
        counts[kind][1] += 1
        if states.get(entity["entity_id"]) not in (None, "unavailable", "unknown"):
            counts[kind][2] += 1
    lines = [
        f"  {kind}: {total} entities, {enabled} enabled, {valued} with a value"
        for kind, (total, enabled, valued) in counts.items()
    ]
    logged = {level: len(log_lines(level)) for level in ("ERROR", "WARNING")}
    lines.append(
        f"  {HA_LOG.name} lines about {DOMAIN}: {logged['ERROR']} errors, "
        f"{logged['WARNING']} warnings"
    )
    return "\n".join(lines)


def log_lines(level: str) -> list[str]:
    """HA's log lines of ``level`` that name the integration (its loggers or its files), but
    the loader's notice that every custom integration gets."""
    try:
        lines = HA_LOG.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [
        line
        for line in lines
        if f" {level} " in line and DOMAIN in line and "[homeassistant.loader]" not in line
    ]


# --- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    port: int
    host_name: str
    summary_after: float
    history: bool
    country: str


def locale_country() -> str:
    """The territory of the user's locale (``de_DE.UTF-8`` -> ``DE``), or "" (``C.UTF-8``)."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if match := re.match(r"[a-z]{2,3}_([A-Z]{2})\b", os.environ.get(variable, "")):
            return match.group(1)
    return ""


async def start_all(options: Options, children: Children, session: aiohttp.ClientSession) -> str:
    """Everything up to a ready UI; returns the summary of what HA shows."""
    state = State.load()
    before = (state.broker_port, state.dtu_port)
    state.pick_ports()
    changed: set[str] = set()
    if before[0] and before[0] != state.broker_port:
        changed |= {"tasmota", "tickrmeter"}
    if before[1] and before[1] != state.dtu_port:
        changed.add("opendtu")
    state.save()
    prepare_config(options.port, options.history)
    bin_ = VENV / "bin"
    simulate = await children.start(
        "fleet-metrics simulate",
        [
            str(bin_ / "fleet-metrics"),
            "simulate",
            "--bind=127.0.0.1",
            f"--broker-port={state.broker_port}",
            f"--dtu-port={state.dtu_port}",
        ],
        BUILD / "simulate.log",
    )
    hass = await children.start(
        "Home Assistant", [str(bin_ / "hass"), "-c", str(CONFIG)], BUILD / "hass.out"
    )
    await within(60.0, "the simulated fleet did not start", wait_for_line(simulate, "running"))
    say(f"simulated fleet: MQTT 127.0.0.1:{state.broker_port}, OpenDTU 127.0.0.1:{state.dtu_port}")
    base = f"http://127.0.0.1:{options.port}"
    api = HomeAssistantApi(session, base)
    say(f"waiting for Home Assistant at {base} (log: {HA_LOG})")
    await within(HA_START_TIMEOUT, f"HA did not answer (see {HA_LOG})", api.wait_until_up(hass))
    await api.log_in()
    await within(HA_START_TIMEOUT, "HA did not reach RUNNING", api.wait_until_running())
    if options.country and not (await api.call("GET", "/api/config")).get("country"):
        # What onboarding's location step would set; without it HA shows a repair.
        await api.ws({"type": "config/core/update", "country": options.country})
    agents_entry = await add_fleet(api, state, changed)
    name = options.host_name or host_name()
    token = await host_token(api, agents_entry, name)
    AGENT_TOML.write_text(agent_toml(name, f"ws://127.0.0.1:{options.port}{AGENT_PATH}", token))
    AGENT_TOML.chmod(0o600)
    await children.start(
        "fleet-metrics agent",
        [str(bin_ / "fleet-metrics"), "agent", "-c", str(AGENT_TOML)],
        BUILD / "agent.log",
    )
    return await summary(api, state)


async def run(options: Options, started: float) -> int:
    import aiohttp

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    children = Children()
    code = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        try:
            startup = asyncio.ensure_future(start_all(options, children, session))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({startup, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not startup.done():
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await startup
                return 0
            stopped.cancel()
            first_summary = startup.result()
            say(f"ready in {time.time() - started:.0f} s")
            print(ready_text(options.port, first_summary), flush=True)
            code = await wait(options, children, stop, session)
        except DemoError as err:
            say(f"error: {err}")
            code = 1
        finally:
            await children.stop()
    return code


def ready_text(port: int, first_summary: str) -> str:
    return (
        f"\n  Home Assistant: http://127.0.0.1:{port}  (user {USERNAME!r}, password {PASSWORD!r})\n"
        "  Settings > Devices & services > Fleet Metrics shows the four entries.\n"
        f"{first_summary}\n"
        f"  Logs: {HA_LOG}, {BUILD}/simulate.log, {BUILD}/agent.log\n"
        "  Ctrl-C stops Home Assistant and the simulated fleet.\n"
    )


async def wait(
    options: Options,
    children: Children,
    stop: asyncio.Event,
    session: aiohttp.ClientSession,
) -> int:
    """Until a signal, or a child dies (that is an error); the summary once more after the
    fleet had time to report."""
    base = f"http://127.0.0.1:{options.port}"
    api = HomeAssistantApi(session, base)
    stopped = asyncio.ensure_future(stop.wait())
    exited = asyncio.ensure_future(children.first_exit())
    later: asyncio.Future[Any] = asyncio.ensure_future(asyncio.sleep(options.summary_after))
    try:
        while True:
            done, _ = await asyncio.wait(
                {stopped, exited, later}, return_when=asyncio.FIRST_COMPLETED
            )
            if stopped in done:
                return 0
            if exited in done:
                child = exited.result()
                say(f"{child.name} exited ({child.process.returncode}): see {child.log}")
                return 1
            if later in done:
                later = asyncio.ensure_future(asyncio.Event().wait())
                with contextlib.suppress(DemoError):
                    await api.log_in()
                    print(
                        f"after {options.summary_after:.0f} s:\n"
                        + await summary(api, State.load()),
                        flush=True,
                    )
    finally:
        for task in (stopped, exited, later):
            task.cancel()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--port", type=int, default=8123, help="HA's port (default 8123, else a free one; 0: free)"
    )
    parser.add_argument(
        "--host-name", default="", help="the host added under Host agents (default: this machine)"
    )
    parser.add_argument(
        "--summary-after", type=float, default=60.0, help="print the entities again after N s"
    )
    parser.add_argument("--no-history", action="store_true", help="leave out history/recorder")
    parser.add_argument(
        "--country",
        default=locale_country(),
        help="HA's country, set once (default: from the locale, if it names one)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the venv and stop (e.g. in CI)"
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    port: int = args.port
    if port == 0 or not port_is_free(port):
        if port:
            say(f"port {port} is taken: using a free one")
        port = free_port()
    return Options(
        port, args.host_name, args.summary_after, not args.no_history, args.country.upper()
    )


def main(argv: Sequence[str]) -> int:
    started = float(os.environ.get("HA_DEMO_STARTED") or time.time())
    args = parse_args(argv)
    try:
        if not in_venv():
            ensure_venv()
            if args.prepare_only:
                return 0
            os.environ["HA_DEMO_STARTED"] = str(started)
            python = VENV / "bin" / "python"
            os.execv(python, [str(python), str(Path(__file__).resolve()), *argv])
        if args.prepare_only:
            return 0
        BUILD.mkdir(parents=True, exist_ok=True)
        with (BUILD / "run.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DemoError(f"another ha-demo runs on {BUILD}") from None
            return asyncio.run(run(options_from(args), started))
    except DemoError as err:
        say(f"error: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
