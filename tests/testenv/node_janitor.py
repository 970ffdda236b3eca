"""The real node's cleanup, in a process of its own that outlives the one that started the node.

It blocks reading its stdin, a pipe whose only writer is the process that owns the node. The
pipe reaches end-of-file when that process closes it (a normal stop) or dies in any way,
SIGKILL included; then, and only then, this removes everything the node made: every process in
the node's cgroups (containerd's shims and the containers outlive containerd itself), the
network namespace (with its veth, bridge, routes and iptables rules), the cgroups, the node's
directories, and the kernel settings kubelet rewrites. The node's mounts live in a private mount
namespace that disappears with its last process, so none needs unmounting here.

    python -m tests.testenv.node_janitor SPEC.json   (stdin: the pipe)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CleanupSpec:
    """What the node made, for the janitor to remove."""

    cgroup: str
    netns: str
    host_link: str
    sysctls: dict[str, str] = field(default_factory=dict)
    directories: list[str] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> CleanupSpec:
        return cls(**json.loads(path.read_text()))


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (one per v1 controller, plus the unified one)."""
    return sorted(p for p in CGROUP_FS.iterdir() if (p / "cgroup.procs").exists())


def cgroup_pids(cgroup: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in hierarchies():
        for procs in (hierarchy / cgroup).rglob("cgroup.procs"):
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                continue
    return pids


def kill_cgroup(cgroup: str, timeout: float = 60.0) -> None:
    """SIGKILL every process in the cgroup subtree until none is left (forks included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = cgroup_pids(cgroup)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_cgroup(cgroup: str, attempts: int = 50) -> None:
    """rmdir the cgroup subtree bottom-up in every hierarchy (EBUSY while processes exit)."""
    for _ in range(attempts):
        left = False
        for hierarchy in hierarchies():
            top = hierarchy / cgroup
            if not top.exists():
                continue
            for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if path.is_dir():
                    try:
                        path.rmdir()
                    except OSError:
                        left = True
            try:
                top.rmdir()
            except OSError:
                left = True
        if not left:
            return
        time.sleep(0.2)


def write_sysctl(name: str, value: str) -> None:
    try:
        Path("/proc/sys", *name.split(".")).write_text(value + "\n")
    except OSError as err:
        print(f"janitor: cannot restore {name}={value}: {err}", file=sys.stderr)


def clean(spec: CleanupSpec) -> None:
    kill_cgroup(spec.cgroup)
    # The namespace goes with its last process and its bind mount; the veth and every route
    # through it go with the namespace.
    subprocess.run(["ip", "netns", "del", spec.netns], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", spec.host_link], capture_output=True, check=False)
    remove_cgroup(spec.cgroup)
    for name, value in spec.sysctls.items():
        write_sysctl(name, value)
    for directory in spec.directories:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    spec = CleanupSpec.read(Path(argv[1]))
    # Neither the terminal's Ctrl-C nor a SIGTERM to the tests' process group may stop the
    # cleanup half-way; the pipe says when to run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()
    clean(spec)
    print("janitor: node removed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
