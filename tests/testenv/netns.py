"""A network namespace joined to the host by a veth pair, to cut a process off the network.

Inside the namespace, chosen loopback ports of the host answer at the same address
(`127.0.0.1:PORT`), through two socat relays: one in the namespace on its loopback, one on the
host's end of the veth. So a process started there with `argv()` keeps its kubeconfig and URLs
(and the API server's certificate, issued for 127.0.0.1, still matches), while every byte it
exchanges with those ports crosses the veth. `cut()` drops those packets both ways in the
namespace with nftables, as a partition does: no reset, connections hang until their timeouts.
`heal()` removes the rules.

    with IsolatedNetwork(log_dir) as net:
        net.forward(apiserver_port)
        subprocess.Popen(net.argv(["modelrollout-operator", ...]))
        net.cut()          # the process loses the API server
        net.heal()
"""

from __future__ import annotations

import ipaddress
import subprocess
import uuid
from pathlib import Path

from tests.testenv.processes import Children

# /30 subnets for the veth pairs are taken from here; a free one is picked per namespace.
_POOL = ipaddress.IPv4Network("10.213.0.0/16")
# How long the namespace's relay waits for the host's: a client that gave up must not have its
# request delivered later, when a partition heals (a direct connection would not be).
_CONNECT_TIMEOUT_S = 3


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _used_addresses() -> set[str]:
    out = _ip("-o", "-4", "addr", "show").stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_addresses()
    for subnet in _POOL.subnets(new_prefix=30):
        first, second = list(subnet.hosts())
        if str(first) not in used and str(second) not in used:
            return subnet
    raise RuntimeError(f"no free /30 left in {_POOL}")


class IsolatedNetwork:
    """A network namespace with a veth to the host; a context manager (deletes it all)."""

    def __init__(self, log_dir: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.name = f"mr-{suffix}"
        self._host_link = f"mrh{suffix}"
        self._inner_link = f"mrn{suffix}"
        subnet = _free_subnet()
        host, inner = list(subnet.hosts())
        self.host_address, self.inner_address = str(host), str(inner)
        self._relays = Children(log_dir)
        self._ports: list[int] = []
        self._open = False

    def __enter__(self) -> IsolatedNetwork:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self._open = True
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self._host_link, "type", "veth", "peer", "name", self._inner_link)
            _ip("link", "set", self._inner_link, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self._host_link)
            _ip("link", "set", self._host_link, "up")
            _ip("-n", self.name, "addr", "add", f"{self.inner_address}/30", "dev", self._inner_link)
            _ip("-n", self.name, "link", "set", self._inner_link, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            self._nft("add table inet partition")
            for hook in ("output", "input"):
                self._nft(
                    f"add chain inet partition {hook} {{ type filter hook {hook} priority 0 ; }}"
                )
        except BaseException:
            self.close()
            raise

    def argv(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (nsenter, not `ip netns exec`: that one remounts
        /sys, which hides the cgroup filesystem)."""
        return ["nsenter", f"--net=/run/netns/{self.name}", *argv]

    def forward(self, port: int) -> None:
        """Make the host's 127.0.0.1:`port` answer at 127.0.0.1:`port` in the namespace."""
        self._relays.start(
            f"relay-host-{self.name}-{port}",
            ["socat", f"TCP-LISTEN:{port},bind={self.host_address},fork,reuseaddr",
             f"TCP:127.0.0.1:{port}"],
        )  # fmt: skip
        self._relays.start(
            f"relay-inner-{self.name}-{port}",
            self.argv(
                ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                 f"TCP:{self.host_address}:{port},connect-timeout={_CONNECT_TIMEOUT_S}"]
            ),
        )  # fmt: skip
        self._ports.append(port)
        self._wait_forwarding(port)

    def _wait_forwarding(self, port: int, attempts: int = 100) -> None:
        """Until a connection through both relays reaches the host's port."""
        probe = (
            "import socket,sys\n"
            f"s=socket.create_connection(('127.0.0.1',{port}),timeout=2)\n"
            "s.settimeout(0.3)\n"
            "try:\n"
            "    sys.exit(1 if s.recv(1) == b'' else 0)\n"  # closed: the host side is not there
            "except socket.timeout:\n"
            "    pass\n"  # open, and the server waits for a request: both relays hold the line
        )
        for _ in range(attempts):
            done = subprocess.run(self.argv(["python3", "-c", probe]), capture_output=True)
            if done.returncode == 0:
                return
            self._relays.check_alive()
        raise TimeoutError(f"127.0.0.1:{port} not reachable from namespace {self.name}")

    def cut(self, *ports: int) -> None:
        """Drop what the namespace sends to the host for `ports` (default: every forwarded one)."""
        for port in ports or self._ports:
            self._nft(f"add rule inet partition output ip daddr {self.host_address} "
                      f"tcp dport {port} drop")  # fmt: skip
            self._nft(f"add rule inet partition input ip saddr {self.host_address} "
                      f"tcp sport {port} drop")  # fmt: skip

    def heal(self) -> None:
        self._nft("flush chain inet partition output")
        self._nft("flush chain inet partition input")

    def _nft(self, command: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "nft", command],
            capture_output=True, text=True, check=True,
        )  # fmt: skip

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._relays.stop(grace_seconds=2)
        _ip("netns", "del", self.name, check=False)
        _ip("link", "del", self._host_link, check=False)
