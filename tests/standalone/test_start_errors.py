"""A bad setting stops the real command before anything starts: one line, exit code 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_metrics.cli import main

from .runner_process import RunnerProcess, write_config

DEMO = '[[sources]]\nkind = "demo"\nname = "demo"\ninterval = 0.05\n'


def _assert_one_line_and_nothing_started(runner: RunnerProcess, starts_with: str) -> None:
    assert len(runner.stderr_lines) == 1, runner.stderr
    assert runner.stderr_lines[0].startswith(f"fleet-metrics: {starts_with}"), runner.stderr
    assert "Traceback" not in runner.stderr
    assert runner.stdout_lines == []
    assert runner.port is None


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not UTF-8": (DEMO.encode() + b"# caf\xe9\n", "{path}: not UTF-8 text (byte 0xe9 on line 5)"),
    "empty": (b"", "sources: nothing to run"),
    "only a comment": (b"# to do\n", "sources: nothing to run"),
    "boolean interval": (DEMO.replace("0.05", "true").encode(), "sources[0].interval: expected"),
    "boolean port": (
        b'[brokers.home]\nhost = "h"\nport = true\n' + DEMO.encode(),
        "brokers.home.port: expected a whole number, got true",
    ),
    "missing CA file": (
        b'[brokers.home]\nhost = "h"\ntls = true\nca_file = "/nonexistent/ca.crt"\n'
        + DEMO.encode(),
        "brokers.home.ca_file: /nonexistent/ca.crt does not exist",
    ),
    "listen without a port": (
        b'[prometheus]\nlisten = "localhost"\n' + DEMO.encode(),
        "prometheus.listen: expected host:port",
    ),
    "not TOML": (b"[[sources]\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_run_with_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, processes: list[RunnerProcess], case: str
) -> None:
    content, message = BAD_FILES[case]
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    runner = await RunnerProcess("run", "-c", str(path)).start()
    processes.append(runner)
    assert await runner.wait() == 2
    _assert_one_line_and_nothing_started(runner, "config error: " + message.format(path=path))


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_check_config_finds_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """check-config runs the same load in-process (the command is the same function)."""
    content, message = BAD_FILES[case]
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    assert main(["check-config", "-c", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"fleet-metrics: config error: {message.format(path=path)}")
    assert err.count("\n") == 1 and err.endswith("\n")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("127.0.0.1:{busy}", "the address is already in use"),
        ("192.0.2.1:9847", "192.0.2.1 is not an address of this machine"),
        ("no-such-host.invalid:9847", "the host 'no-such-host.invalid' does not resolve"),
    ],
    ids=["in use", "not local", "unresolvable"],
)
async def test_a_listen_address_that_cannot_be_bound_is_one_line_and_exit_2(
    tmp_path: Path, processes: list[RunnerProcess], busy_port: int, listen: str, problem: str
) -> None:
    """Checked by binding, before any broker or source starts."""
    address = listen.format(busy=busy_port)
    config = write_config(tmp_path / "config.toml", DEMO)
    runner = await RunnerProcess("run", "-c", str(config), "--listen", address).start()
    processes.append(runner)
    assert await runner.wait() == 2
    _assert_one_line_and_nothing_started(
        runner, f"cannot start: prometheus.listen: cannot listen on {address}: {problem}"
    )
