"""A real Kubernetes node beside the test control plane: containerd, kubelet, kube-proxy and
CoreDNS, so pods run in containers from real images.

Layout (all on this machine, nothing routed out of it):
- one network namespace holds the node: containerd, kubelet, kube-proxy and CoreDNS run there
  (`nsenter --net`: `ip netns exec` would remount /sys and hide the cgroup filesystem), with the
  CNI bridge `cni0` for the pods (POD_SUBNET) and a veth to the host;
- the host routes the pod subnet and the Service range through that veth, so tests, Prometheus
  and the API server reach pods and ClusterIPs directly;
- the API server stays on the host's loopback; a relay on the host's end of the veth makes it
  reachable from the node, and the `kubernetes` Service's endpoint names that relay, so pods
  reach it at its ClusterIP through kube-proxy;
- containerd and kubelet share a private mount namespace with fresh tmpfs on the paths they
  would otherwise write on the host (/run/containerd, /run/netns, /var/lib/cni, /var/log/pods),
  so their mounts and files vanish with them;
- every process of the node sits in one cgroup subtree, which kubelet also uses as its
  cgroupRoot; a janitor process (tests/testenv/node_janitor.py) removes it all when the owner
  stops or dies, SIGKILL included.

    with ControlPlane(workdir / "cp", nodes=0) as cp, RealNode(cp, workdir / "node") as node:
        cp.kubectl("run", ...)
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import yaml

from tests.testenv.controlplane import REPO, ControlPlane, wait_for
from tests.testenv.kubeconfig import write_kubeconfig
from tests.testenv.netns import _free_subnet, _ip
from tests.testenv.node_janitor import CleanupSpec, hierarchies
from tests.testenv.pause_image import PAUSE_IMAGE, write_single_binary_image
from tests.testenv.processes import Children

NODE_NAME = "modelrollout-node"
POD_SUBNET = ipaddress.IPv4Network("10.245.0.0/24")
BRIDGE = "cni0"
BRIDGE_ADDRESS = str(next(POD_SUBNET.hosts()))  # also where CoreDNS answers
SERVICE_CIDR = "10.96.0.0/16"
CNI_BIN_DIR = Path("/usr/lib/cni")
# The kernel settings kubelet rewrites at start (and kube-proxy's bridge netfilter switch):
# saved before, restored by the janitor.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
# What the node needs from the machine: Debian's packages (scripts/ensure-debian-tools.sh).
COMMANDS = {
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "socat": "socat",
}
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "pause")
# Paths containerd and kubelet write outside their configured directories: private tmpfs.
PRIVATE_PATHS = ("/run/containerd", "/run/netns", "/var/lib/cni", "/var/log/pods",
                 "/var/log/containers")  # fmt: skip


class NodeUnavailable(RuntimeError):
    """The machine lacks what a real node needs (a package, root, namespaces, cgroups)."""


def missing_requirements(bin_dir: Path) -> list[str]:
    """What is missing on this machine for a real node, as 'what (how to get it)' strings."""
    missing = [f"{cmd} (Debian package {pkg})" for cmd, pkg in COMMANDS.items()
               if shutil.which(cmd) is None]  # fmt: skip
    missing += [f"{CNI_BIN_DIR}/{plugin} (Debian package containernetworking-plugins)"
                for plugin in ("bridge", "host-local", "loopback", "portmap")
                if not (CNI_BIN_DIR / plugin).exists()]  # fmt: skip
    missing += [f"{bin_dir}/{name} (make testenv)" for name in NODE_BINARIES
                if not os.access(bin_dir / name, os.X_OK)]  # fmt: skip
    if os.geteuid() != 0:
        missing.append("root (containers, network namespaces and cgroups need it)")
    if not hierarchies():
        missing.append("a cgroup filesystem at /sys/fs/cgroup")
    return missing


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys", *name.split("."))


class RealNode:
    """One real node registered with `control_plane`; a context manager (removes it all)."""

    def __init__(
        self,
        control_plane: ControlPlane,
        workdir: Path,
        *,
        images: Sequence[Path] = (),
        startup_timeout: float = 180.0,
    ) -> None:
        """images: image archives (docker-archive or OCI) to import before kubelet starts."""
        self.cp = control_plane
        self.workdir = workdir.resolve()
        self.images = list(images)
        self.startup_timeout = startup_timeout
        suffix = uuid.uuid4().hex[:8]
        self.netns = f"mrnode-{suffix}"
        self.cgroup = f"mrnode-{suffix}"
        self._host_link = f"mrv{suffix}"
        self._inner_link = f"mrn{suffix}"
        self.host_address = ""
        self.node_address = ""
        self.containerd_socket = self.workdir / "containerd" / "containerd.sock"
        self.log_dir = self.workdir / "logs"
        self._children = Children(self.log_dir)
        self._janitor: subprocess.Popen[bytes] | None = None
        self._started = False

    def __enter__(self) -> RealNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        missing = missing_requirements(self.cp.bin_dir)
        if missing:
            raise NodeUnavailable(
                "a real node needs: "
                + "; ".join(missing)
                + ". Run `make testenv tools` (as root) to build and install them."
            )
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self._start_janitor()
        self._make_cgroups()
        self._make_network()
        self._start_apiserver_relay()
        self._start_containerd()
        self._import_images()
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_coredns()
        self._publish_apiserver_endpoint()
        wait_for("the real node Ready", self._ready, self.startup_timeout, self._children)
        # Pods are admitted only once their namespace's default ServiceAccount exists.
        self.cp.kubectl(
            "wait", "--for=create", "serviceaccount/default", "-n", "default", "--timeout=60s",
            timeout=70,
        )  # fmt: skip

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._children.stop(grace_seconds=5)
        janitor, self._janitor = self._janitor, None
        if janitor is not None:
            assert janitor.stdin is not None
            janitor.stdin.close()  # end-of-file: the janitor removes the node
            janitor.wait(timeout=120)

    # --- pieces ----------------------------------------------------------------------------

    def _start_janitor(self) -> None:
        saved = {name: _sysctl_path(name).read_text().strip() for name in SYSCTLS
                 if _sysctl_path(name).exists()}  # fmt: skip
        spec_path = self.workdir / "cleanup.json"
        CleanupSpec(
            cgroup=self.cgroup,
            netns=self.netns,
            host_link=self._host_link,
            sysctls=saved,
            directories=[str(self.workdir / "containerd"), str(self.workdir / "kubelet")],
        ).write(spec_path)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "janitor.log").open("ab") as log:
            # Its own session and no parent-death signal: it must outlive this process.
            self._janitor = subprocess.Popen(
                [sys.executable, "-m", "tests.testenv.node_janitor", str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )

    def _make_cgroups(self) -> None:
        for hierarchy in hierarchies():
            for path in (hierarchy / self.cgroup, hierarchy / self.cgroup / "system"):
                path.mkdir(exist_ok=True)
                if hierarchy.name == "cpuset":
                    # A cpuset cgroup takes no process before it has CPUs and memory nodes.
                    for knob in ("cpuset.cpus", "cpuset.mems"):
                        value = (path.parent / knob).read_text()
                        (path / knob).write_text(value)

    def _in_cgroup(self, argv: Sequence[str]) -> list[str]:
        """argv run in the node's cgroup subtree, where the janitor finds every process."""
        join = (
            f"for f in /sys/fs/cgroup/*/{self.cgroup}/system/cgroup.procs; do "
            'echo $$ > "$f"; done; exec "$@"'
        )
        return ["sh", "-c", join, "node", *argv]

    def _in_node(self, argv: Sequence[str], *, mount: bool = False) -> list[str]:
        """argv run in the node's cgroup and network namespace (and, with mount=True, in
        containerd's private mount namespace)."""
        if mount:
            enter = ["nsenter", f"--target={self._containerd_pid()}", "--mount", "--net"]
        else:
            enter = ["nsenter", f"--net=/run/netns/{self.netns}"]
        return self._in_cgroup([*enter, *argv])

    def _netns(self, *argv: str) -> None:
        subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *argv],
                       capture_output=True, text=True, check=True)  # fmt: skip

    def _make_network(self) -> None:
        for cidr in (str(POD_SUBNET), SERVICE_CIDR):
            if _ip("route", "show", cidr).stdout.strip():
                raise NodeUnavailable(
                    f"the host already routes {cidr}: is another real node running? "
                    "(`make cluster-down` stops the one of `make cluster-up`)"
                )
        subnet = _free_subnet()
        host, inner = list(subnet.hosts())
        self.host_address, self.node_address = str(host), str(inner)
        _ip("netns", "add", self.netns)
        _ip("link", "add", self._host_link, "type", "veth", "peer", "name", self._inner_link)
        _ip("link", "set", self._inner_link, "netns", self.netns)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self._host_link)
        _ip("link", "set", self._host_link, "up")
        ns = ["-n", self.netns]
        _ip(*ns, "addr", "add", f"{self.node_address}/30", "dev", self._inner_link)
        _ip(*ns, "link", "set", self._inner_link, "up")
        _ip(*ns, "link", "set", "lo", "up")
        # The pod bridge exists before the first pod, so CoreDNS can listen on its address.
        _ip(*ns, "link", "add", BRIDGE, "type", "bridge")
        _ip(*ns, "addr", "add", f"{BRIDGE_ADDRESS}/{POD_SUBNET.prefixlen}", "dev", BRIDGE)
        _ip(*ns, "link", "set", BRIDGE, "up")
        # Processes of the node reach ClusterIPs: a route first, then kube-proxy's DNAT.
        _ip(*ns, "route", "add", SERVICE_CIDR, "dev", BRIDGE)
        self._netns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._netns("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        for cidr in (str(POD_SUBNET), SERVICE_CIDR):
            _ip("route", "add", cidr, "via", self.node_address, "dev", self._host_link)

    def _start_apiserver_relay(self) -> None:
        port = self.cp.port
        self._children.start(
            "apiserver-relay",
            self._in_cgroup(["socat", f"TCP-LISTEN:{port},bind={self.host_address},fork,reuseaddr",
                             f"TCP:127.0.0.1:{port}"]),
        )  # fmt: skip
        self.api_server = f"https://{self.host_address}:{port}"

    # --- containerd ------------------------------------------------------------------------

    def _containerd_pid(self) -> int:
        return int((self.workdir / "containerd" / "pid").read_text())

    def _start_containerd(self) -> None:
        base = self.workdir / "containerd"
        net_d = self.workdir / "cni" / "net.d"
        net_d.mkdir(parents=True)
        base.mkdir(parents=True, exist_ok=True)
        (net_d / "10-modelrollout.conflist").write_text(json.dumps(self._cni_config(), indent=2))
        config = base / "config.toml"
        config.write_text(self._containerd_config(base, net_d))
        mounts = "".join(f"mkdir -p {p} && mount -t tmpfs -o mode=755 tmpfs {p} && "
                         for p in PRIVATE_PATHS)  # fmt: skip
        script = f"{mounts}echo $$ > {base / 'pid'} && exec containerd --config {config}"
        self._children.start(
            "containerd",
            self._in_node(["unshare", "--mount", "--propagation", "private",
                           "sh", "-c", script]),
        )  # fmt: skip
        wait_for("containerd", self._containerd_serving, 60, self._children)

    def _containerd_serving(self) -> bool:
        if not self.containerd_socket.exists():
            return False
        return self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args],
            capture_output=True, text=True, check=check,
        )  # fmt: skip

    def _containerd_config(self, base: Path, net_d: Path) -> str:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{base / "ttrpc.sock"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # This machine lacks CAP_SYS_RESOURCE: without it every pod sandbox fails to start.
  restrict_oom_score_adj = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{net_d}"
"""

    def _cni_config(self) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": "modelrollout",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(POD_SUBNET), "gateway": BRIDGE_ADDRESS}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _import_images(self) -> None:
        pause = self.workdir / "pause.tar"
        write_single_binary_image(self.cp.bin_dir / "pause", pause, PAUSE_IMAGE, ["/pause"])
        for archive in [pause, *self.images]:
            self.ctr("images", "import", str(archive))

    # --- kubelet, kube-proxy, CoreDNS ------------------------------------------------------

    def _client_kubeconfig(
        self, name: str, common_name: str, organizations: Sequence[str] = ()
    ) -> Path:
        assert self.cp.pki is not None
        pair = self.cp.pki.issue(name, common_name, organizations=organizations)
        return write_kubeconfig(
            self.workdir / f"{name}.kubeconfig",
            server=self.api_server,
            ca=self.cp.pki.ca.cert,
            user=common_name,
            client=pair,
            tls_server_name="localhost",
        )

    def _start_kubelet(self) -> None:
        assert self.cp.pki is not None
        kubeconfig = self._client_kubeconfig(
            "kubelet", f"system:node:{NODE_NAME}", organizations=["system:nodes"]
        )
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Reachable only inside this machine's namespaces; the API server calls it without
            # a client certificate (logs, exec).
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(self.cp.pki.ca.cert)}},
            "authorization": {"mode": "AlwaysAllow"},
            "address": self.node_address,
            "readOnlyPort": 0,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "clusterDNS": [BRIDGE_ADDRESS],
            "clusterDomain": "cluster.local",
            "resolvConf": "",
            "hairpinMode": "hairpin-veth",
            "serializeImagePulls": False,
            "maxPods": 60,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
        }  # fmt: skip
        config_path = self.workdir / "kubelet-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self._children.start(
            "kubelet",
            self._in_node([
                str(self.cp.bin_dir / "kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.workdir / 'kubelet'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.node_address}",
                "--v=1",
            ], mount=True),
        )  # fmt: skip

    def _start_kube_proxy(self) -> None:
        kubeconfig = self._client_kubeconfig("kube-proxy", "system:kube-proxy")
        self._children.start(
            "kube-proxy",
            self._in_node([
                str(self.cp.bin_dir / "kube-proxy"),
                f"--kubeconfig={kubeconfig}",
                "--proxy-mode=iptables",
                f"--hostname-override={NODE_NAME}",
                f"--cluster-cidr={POD_SUBNET}",
                # nf_conntrack_max is read-only in a child network namespace.
                "--conntrack-max-per-core=0",
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--v=1",
            ]),
        )  # fmt: skip

    def _start_coredns(self) -> None:
        # Cluster names only: no forwarder, since nothing leaves this machine.
        kubeconfig = self._client_kubeconfig("coredns", "modelrollout-coredns", ["system:masters"])
        corefile = self.workdir / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {BRIDGE_ADDRESS}
    errors
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
    }}
    cache 5
}}
"""
        )
        self._children.start(
            "coredns", self._in_node([str(self.cp.bin_dir / "coredns"), f"-conf={corefile}"])
        )

    def _publish_apiserver_endpoint(self) -> None:
        """The `kubernetes` Service's endpoint: the relay, where pods can reach it."""
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes-testenv",
                "namespace": "default",
                "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "modelrollout-testenv",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [self.host_address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.cp.port, "protocol": "TCP"}],
        }
        self.cp.kubectl("apply", "-f", "-", input=json.dumps(slice_))

    def _ready(self) -> bool:
        out = self.cp.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def proxied_endpoints(self, namespace: str, service: str, port: str) -> int:
        """How many endpoints kube-proxy has programmed for a Service's port (its iptables
        rules): what a client of the ClusterIP is balanced over right now."""
        rules = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "iptables-save", "-t", "nat"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        marker = f'"{namespace}/{service}:{port} -> '
        return sum(1 for r in rules.splitlines() if r.startswith("-A KUBE-SVC-") and marker in r)
