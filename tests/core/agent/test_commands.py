"""The command runner against real processes: good output, a hang (killed, stale), a
non-zero exit, garbage, a missing program, and two callers at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from custom_components.fleet_metrics.core.agent.collectors.commands import Command, Reading, find


def script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


def parse_number(text: str) -> int:
    return int(text.strip())  # ValueError on garbage: the parser's refusal


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def test_good_then_failing_runs_reuse_the_last_good_result_marked_stale(bin_dir: Path) -> None:
    script(bin_dir, "fake-number", 'cat "$(dirname "$0")/answer"\n')
    answer = bin_dir / "answer"
    command = Command(["fake-number"], parse_number)
    answer.write_text("41\n")
    first = command.run(5)
    assert first is not None and (first.value, first.stale) == (41, False)
    answer.write_text("garbage\n")
    garbled = command.run(5)
    assert garbled is not None and (garbled.value, garbled.stale) == (41, True)
    assert command.failing and "invalid literal" in command.last_error
    answer.write_text("42\n")
    fresh = command.run(5)
    assert fresh is not None and (fresh.value, fresh.stale) == (42, False)
    assert not command.failing and command.failures == 1


def test_non_zero_exit_is_a_failure_with_its_message(bin_dir: Path) -> None:
    script(
        bin_dir, "fails", 'echo 7\necho "ipcc_send_rec[1] failed: Unknown error -1" >&2\nexit 255\n'
    )
    command = Command(["fails"], parse_number)
    assert command.run(5) is None  # nothing good yet
    assert command.exit_status == 255
    assert command.last_error == "exited with status 255: ipcc_send_rec[1] failed: Unknown error -1"


def test_a_hang_is_killed_with_its_children_at_the_timeout(bin_dir: Path) -> None:
    marker = bin_dir / "good"
    script(
        bin_dir,
        "slow",
        f"if [ -e {marker} ]; then echo 5; exit 0; fi\n"
        f"echo 1\nsleep 300 &\necho $! > {bin_dir}/child\nwait\n",
    )
    command = Command(["slow"], parse_number)
    marker.touch()
    assert command.run(5) is not None
    marker.unlink()
    started = time.monotonic()
    reading = command.run(0.5)
    assert time.monotonic() - started < 3  # not the 300 s of the child holding the pipe
    assert reading is not None and (reading.value, reading.stale) == (5, True)
    assert "timed out after 0.5 s" in command.last_error
    child = int((bin_dir / "child").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the command's child outlived the timeout"
        time.sleep(0.05)


def test_a_missing_program_is_off_not_an_error(
    bin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    command = Command(["no-such-program-here"], parse_number)
    assert command.run(5) is None
    assert command.missing and command.failures == 0
    assert not [record for record in caplog.records if record.levelname == "WARNING"]
    assert find("no-such-program-here") is None
    script(bin_dir, "no-such-program-here", "echo 3\n")
    reading = command.run(5)
    assert reading is not None and reading.value == 3 and not command.missing


def test_never_two_runs_of_one_command_at_once(bin_dir: Path) -> None:
    log = bin_dir / "runs.log"
    script(bin_dir, "counted", f"echo start >> {log}\nsleep 0.3\necho end >> {log}\necho 1\n")
    commands = [Command(["counted"], parse_number) for _ in range(3)]  # three collectors
    threads = [threading.Thread(target=command.run, args=(5,)) for command in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.read_text().split() == ["start", "end"] * 3  # one after the other
    assert all(command.last_good == 1 for command in commands)


def test_a_caller_waiting_longer_than_its_timeout_gets_the_stale_result(bin_dir: Path) -> None:
    script(bin_dir, "slowish", "sleep 1\necho 9\n")
    first, second = Command(["slowish"], parse_number), Command(["slowish"], parse_number)
    second.last_good = 8
    thread = threading.Thread(target=first.run, args=(5,))
    thread.start()
    time.sleep(0.2)
    reading = second.run(0.3)
    thread.join()
    assert reading is not None and (reading.value, reading.stale) == (8, True)
    assert "still going" in second.last_error
    assert first.last_good == 9


def test_commands_sharing_a_lock_key_run_one_at_a_time(bin_dir: Path) -> None:
    """Task logs differ by UPID but share one lock, so the lock table does not grow per job."""
    script(bin_dir, "slow-a", "sleep 2\necho 1\n")
    script(bin_dir, "quick-b", "echo 2\n")
    a = Command(["slow-a"], parse_number, lock_key=("k",))
    b = Command(["quick-b"], parse_number, lock_key=("k",))
    thread = threading.Thread(target=a.run, args=(5,))
    thread.start()
    time.sleep(0.5)
    assert b.run(0.5) is None and "still going" in b.last_error
    thread.join()
    assert b.run(5) == Reading(2, stale=False)
