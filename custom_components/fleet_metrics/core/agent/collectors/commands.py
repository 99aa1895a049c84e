"""Running host commands (``zpool``, ``pvesh``) for the collectors: with a timeout, one run
of a command at a time, and the last good result reused, marked stale, when a run fails.

Collectors run in worker threads (see agent.py), so a command runs synchronously there with
``subprocess``; the process gets its own session so that a timeout kills it and whatever it
started (``pvesh`` is Perl and may fork), and the pipes close. A run is good only when the
command exits 0 *and* its parser accepts the output, so garbage never replaces a good
result. A command not installed is not an error: the collector has nothing to report.

``LC_ALL=C`` makes ``zpool`` print dates and numbers the way the parsers read them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from ...errors import describe_error

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

# Where Debian and Proxmox install zpool and pvesh, for an agent started with a short PATH.
FALLBACK_DIRS: Final = ("/usr/sbin", "/sbin", "/usr/bin")
_LOCKS: dict[tuple[str, ...], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def find(program: str) -> str | None:
    """The path of ``program``: on PATH, else in the usual system folders; None if absent."""
    found = shutil.which(program)
    if found is None:
        found = shutil.which(program, path=os.pathsep.join(FALLBACK_DIRS))
    return found


def node_name() -> str:
    """The PVE node name of this host: its short host name, as PVE takes it."""
    return socket.gethostname().split(".", 1)[0]


def _lock(key: tuple[str, ...]) -> threading.Lock:
    """One lock per command line (or ``lock_key``), shared by every collector; their number
    is that of the storages and kinds of command, which is fixed."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(key, threading.Lock())


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):  # noqa: UP046 - core runs on 3.11
    """A parsed command result; ``stale`` when it is the last good one, reused."""

    value: T
    stale: bool


class CommandFailed(Exception):
    """One run that gave no usable result; the message says why, on one line."""


class Command(Generic[T]):  # noqa: UP046 - core runs on 3.11
    """One command line and its parser, with the last good parsed result.

    Args:
        argv: the program (looked up with ``find`` at every run) and its arguments.
        parse: turns stdout into the result; a ValueError (or an ArithmeticError such as
            an OverflowError) means the output is not usable.
        lock_key: what runs one at a time; the command line by default. Commands whose
            lines differ in an id that keeps changing (a task's UPID) share one key, so
            the locks stay as few as the kinds of command.
    """

    def __init__(
        self,
        argv: Sequence[str],
        parse: Callable[[str], T],
        lock_key: tuple[str, ...] | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.lock_key = self.argv if lock_key is None else lock_key
        self.parse = parse
        self.label = " ".join(self.argv)
        self.last_good: T | None = None
        self.last_good_at = 0.0  # time.time() of the last good run
        self.missing = False
        self.failing = False
        self.failures = 0
        self.last_error = ""
        self.exit_status: int | None = None  # of the last run that exited non-zero

    def run(self, timeout: float, max_age: float = 0.0) -> Reading[T] | None:
        """The fresh result, else the last good one marked stale, else None. A good result
        of a run that ended while this caller waited for the lock (another collector's), or
        one younger than ``max_age`` seconds, is given without running the command again."""
        program = find(self.argv[0])
        if program is None:
            if not self.missing:
                _LOGGER.debug("%s is not installed; nothing to read", self.argv[0])
            self.missing = True
            return None
        self.missing = False
        asked = time.time()
        lock = _lock(self.lock_key)
        if not lock.acquire(timeout=timeout):
            return self._failed(CommandFailed("another run of it is still going"))
        try:  # the result is kept under the lock: collectors of two tiers share commands
            if (young := self._young(asked, max_age)) is not None:
                return young
            value = self.parse(self._output(program, timeout))
        except (CommandFailed, ValueError, ArithmeticError) as err:
            # ArithmeticError: an overflow a parser let through is a bad output, not a crash
            return self._failed(err)
        else:
            self.last_good, self.last_good_at = value, time.time()
            if self.failing:
                self.failing = False
                _LOGGER.info("%s works again", self.label)
            return Reading(value, False)
        finally:
            lock.release()

    def _young(self, asked: float, max_age: float) -> Reading[T] | None:
        """The latest run's result when it was good and ended after ``asked`` or less than
        ``max_age`` seconds ago."""
        if self.last_good is None or self.failing:
            return None
        if self.last_good_at <= asked and time.time() - self.last_good_at >= max_age:
            return None
        return Reading(self.last_good, False)

    def _output(self, program: str, timeout: float) -> str:
        try:
            process = subprocess.Popen(
                [program, *self.argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, "LC_ALL": "C"},
                start_new_session=True,
            )
        except OSError as err:
            raise CommandFailed(describe_error(err)) from None
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise CommandFailed(f"timed out after {timeout:g} s; killed") from None
        if process.returncode != 0:
            self.exit_status = process.returncode
            first = stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            why = f": {' '.join(first[0].split())[:200]}" if first else ""
            raise CommandFailed(f"exited with status {process.returncode}{why}")
        return stdout.decode("utf-8", "replace")

    def _failed(self, err: Exception) -> Reading[T] | None:
        self.failures += 1
        self.last_error = describe_error(err)
        if not self.failing:
            self.failing = True
            reuse = "reusing the last good result, marked stale"
            _LOGGER.warning(
                "%s failed (%s); %s until it works again",
                self.label,
                self.last_error,
                reuse if self.last_good is not None else "sending nothing from it",
            )
        if self.last_good is None:
            return None
        return Reading(self.last_good, True)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's whole session and reap it; pipes held open by a child that left
    the session are closed rather than waited for."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    try:
        process.communicate(timeout=2)
    except subprocess.TimeoutExpired:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
