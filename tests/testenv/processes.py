"""Child processes that cannot outlive the test session.

Each child runs in its own process group (so a stop reaches anything it forks) and asks the
kernel to kill it when the thread that started it dies (PR_SET_PDEATHSIG), which covers the
one case no Python handler can: the parent being SIGKILLed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildDied(RuntimeError):
    """A component exited while it should be running."""


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Children:
    """Named long-running children, logging to `log_dir/<name>.log`, stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._commands: dict[str, tuple[list[str], dict[str, str] | None]] = {}

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._commands[name] = (list(argv), dict(env) if env is not None else None)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._running.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self._running:
            code = proc.poll()
            if code is not None:
                log = self.log_dir / f"{name}.log"
                raise ChildDied(f"{name} exited with code {code}; end of {log}:\n{log_tail(log)}")

    def kill(self, name: str) -> None:
        """SIGKILL the child `name` (and its group), as a crash would; `restart` brings it back."""
        for entry in [e for e in self._running if e[0] == name]:
            self._running.remove(entry)
            _signal_group(entry[1], signal.SIGKILL)
            entry[1].wait()

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start `name` again with the command it was first started with (its log appended)."""
        argv, env = self._commands[name]
        return self.start(name, argv, env)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM each group (last started first), then SIGKILL what did not exit in time."""
        while self._running:
            _name, proc = self._running.pop()
            _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            # The group may hold forked helpers even after the leader exited.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
