"""A real Kubernetes control plane on loopback for tests, benchmarks and the demo.

etcd and kube-apiserver (TLS, RBAC, service-account keys) plus kube-controller-manager,
kube-scheduler and kwok, whose fake nodes turn scheduled pods Running and Ready without
containers. Binaries come from `make testenv` (tests/testenv/build.sh).

    with ControlPlane(Path("/tmp/cp")) as cp:
        cp.kubectl("get", "nodes")

CLI (used by `make cluster-up` / `make cluster-down`):
    python -m tests.testenv.controlplane up|down [--workdir .testenv]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from tests.testenv.kubeconfig import write_kubeconfig
from tests.testenv.pki import KeyPair, Pki
from tests.testenv.processes import ChildDied, Children, log_tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODULE = "tests.testenv.controlplane"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
    "kubelet",
    "kube-proxy",
    "coredns",
    "pause",
    "actionlint",
)
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_PREFIX = "kwok-node-"


class TestenvMissing(RuntimeError):
    """The binaries are not built yet."""


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}"


def kubernetes_version() -> str:
    """The k8s.io/kubernetes release the binaries are built from (pinned in our go.mod)."""
    for line in (HERE / "kubernetes" / "go.mod").read_text().splitlines():
        words = line.removeprefix("require").split()
        if len(words) >= 2 and words[0] == "k8s.io/kubernetes" and words[1].startswith("v"):
            return words[1]
    raise LookupError("k8s.io/kubernetes not required in tests/testenv/kubernetes/go.mod")


def default_bin_dir() -> Path:
    """The cache directory build.sh fills (it owns the path rule)."""
    out = subprocess.run(
        ["bash", str(HERE / "build.sh"), "--bin-dir"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def missing_binaries(bin_dir: Path) -> list[str]:
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if not (bin_dir.parent / "etc" / "kwok-stages.yaml").is_file():
        missing.append("etc/kwok-stages.yaml")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, ready: Callable[[], bool], timeout: float, children: Children) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check_alive()
        if ready():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class ControlPlane:
    """Start/stop the control plane; a context manager. Logs live in `workdir/logs`."""

    def __init__(
        self,
        workdir: Path,
        *,
        bin_dir: Path | None = None,
        nodes: int = 3,
        startup_timeout: float = 180.0,
        client_qps: int | None = None,
    ) -> None:
        """client_qps: the controller-manager's and scheduler's API client rate (default: theirs,
        20 and 50 requests/s), raised for scale runs as kwokctl's disableQPSLimits does."""
        self.workdir = workdir.resolve()
        self.client_qps = client_qps
        self.bin_dir = bin_dir if bin_dir is not None else default_bin_dir()
        self.nodes = nodes
        self.startup_timeout = startup_timeout
        self.kubeconfig = self.workdir / "kubeconfig"
        self.log_dir = self.workdir / "logs"
        self.ca_cert = self.workdir / "pki" / "ca.crt"
        self.server = ""
        self.port = 0
        self.pki: Pki | None = None
        self._etcd_url = ""
        self._children = Children(self.log_dir)
        self._ssl: ssl.SSLContext | None = None
        self._sigterm_installed = False
        self._started = False

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise TestenvMissing(
                f"test control plane binaries missing in {self.bin_dir}: {', '.join(missing)}."
                " Run `make testenv` (bash tests/testenv/build.sh) to build them."
            )
        self._started = True
        atexit.register(self.stop)
        self._stop_on_sigterm()
        try:
            self._start_components()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._children.stop()
        atexit.unregister(self.stop)
        if self._sigterm_installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._sigterm_installed = False

    def kill(self, component: str) -> None:
        """SIGKILL one component (e.g. "kube-apiserver", "etcd"): a crash, for fault tests."""
        self._children.kill(component)

    def restart(self, component: str) -> None:
        """Start a killed component again with its first command line; wait until it serves."""
        self._children.restart(component)
        ready = {
            "etcd": lambda: '"health":"true"' in self._get(f"{self._etcd_url}/health"),
            "kube-apiserver": lambda: self._get(f"{self.server}/readyz") == "ok",
        }.get(component, lambda: True)
        wait_for(f"{component} serving again", ready, self.startup_timeout, self._children)

    def _stop_on_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit so `with` blocks and fixtures tear down."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def _exit(signum: int, frame: types.FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _exit)
        self._sigterm_installed = True

    # --- components --------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _start_components(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for stale in ("etcd-data", "pki", "logs"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        pki = self.pki = Pki(self.workdir / "pki")
        etcd_server = pki.issue(
            "etcd-server", "etcd", dns_names=["localhost"], ip_addresses=["127.0.0.1"]
        )
        etcd_client = pki.issue("apiserver-etcd-client", "kube-apiserver-etcd-client")
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            ip_addresses=["127.0.0.1", "10.96.0.1"],
        )
        admin = pki.issue("admin", "modelrollout-admin", organizations=["system:masters"])
        sa = pki.service_account_keys()
        self._ssl = ssl.create_default_context(cafile=str(pki.ca.cert))
        self._ssl.load_cert_chain(str(admin.cert), str(admin.key))

        etcd_url = self._etcd_url = self._start_etcd(pki, etcd_server)
        port = self.port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self._start_apiserver(port, etcd_url, pki, etcd_client, serving, sa)
        write_kubeconfig(
            self.kubeconfig, server=self.server, ca=pki.ca.cert, user="admin", client=admin
        )
        self._start_controllers(pki, sa)
        self._create_nodes()
        wait_for("fake nodes Ready", self._nodes_ready, self.startup_timeout, self._children)

    def _start_etcd(self, pki: Pki, server: KeyPair) -> str:
        client_port, peer_port = free_port(), free_port()
        url = f"https://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self._children.start(
            "etcd",
            [
                self._bin("etcd"),
                "--name=testenv",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=testenv={peer}",
                f"--cert-file={server.cert}",
                f"--key-file={server.key}",
                f"--trusted-ca-file={pki.ca.cert}",
                "--client-cert-auth=true",
                # A test cluster's data is disposable: skip fsync for speed.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_for(
            "etcd /health",
            lambda: '"health":"true"' in self._get(f"{url}/health"),
            60,
            self._children,
        )
        return url

    def _start_apiserver(
        self,
        port: int,
        etcd_url: str,
        pki: Pki,
        etcd_client: KeyPair,
        serving: KeyPair,
        sa: KeyPair,
    ) -> None:
        self._children.start(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--etcd-cafile={pki.ca.cert}",
                f"--etcd-certfile={etcd_client.cert}",
                f"--etcd-keyfile={etcd_client.key}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # Kubernetes >= 1.3x refuses a loopback advertise address for the endpoint
                # reconciler of the `kubernetes` Service; nothing here needs that Service.
                "--endpoint-reconciler-type=none",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'pki' / 'apiserver-generated'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca.cert}",
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # A real node's name does not resolve here; its InternalIP does (kubectl logs).
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )
        wait_for(
            "kube-apiserver /readyz",
            lambda: self._get(f"{self.server}/readyz") == "ok",
            self.startup_timeout,
            self._children,
        )

    def _client_rate_flags(self) -> list[str]:
        if self.client_qps is None:
            return []
        return [f"--kube-api-qps={self.client_qps}", f"--kube-api-burst={2 * self.client_qps}"]

    def _start_controllers(self, pki: Pki, sa: KeyPair) -> None:
        kcm = pki.issue("kube-controller-manager", "system:kube-controller-manager")
        scheduler = pki.issue("kube-scheduler", "system:kube-scheduler")
        kcm_config = write_kubeconfig(
            self.workdir / "kube-controller-manager.kubeconfig",
            server=self.server,
            ca=pki.ca.cert,
            user="system:kube-controller-manager",
            client=kcm,
        )
        scheduler_config = write_kubeconfig(
            self.workdir / "kube-scheduler.kubeconfig",
            server=self.server,
            ca=pki.ca.cert,
            user="system:kube-scheduler",
            client=scheduler,
        )
        self._children.start(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={kcm_config}",
                f"--authentication-kubeconfig={kcm_config}",
                f"--authorization-kubeconfig={kcm_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.workdir / 'pki' / 'kcm-generated'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--cluster-signing-cert-file={pki.ca.cert}",
                f"--cluster-signing-key-file={pki.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--cluster-name=modelrollout-testenv",
                "--v=1",
                *self._client_rate_flags(),
            ],
        )
        self._children.start(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={scheduler_config}",
                f"--authentication-kubeconfig={scheduler_config}",
                f"--authorization-kubeconfig={scheduler_config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.workdir / 'pki' / 'scheduler-generated'}",
                "--leader-elect=false",
                "--v=1",
                *self._client_rate_flags(),
            ],
        )
        self._children.start(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self.bin_dir.parent / 'etc' / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.240.0.1",
            ],
        )

    def _create_nodes(self) -> None:
        if self.nodes == 0:
            return
        nodes = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"{NODE_PREFIX}{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": f"{NODE_PREFIX}{i}",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                },
            }
            for i in range(self.nodes)
        ]
        manifest = yaml.safe_dump_all(nodes)
        self.kubectl("apply", "-f", "-", input=manifest)

    def _nodes_ready(self) -> bool:
        out = self.kubectl("get", "nodes", "-o", "json").stdout
        ready = [
            node
            for node in json.loads(out)["items"]
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def _get(self, url: str) -> str:
        """Body of a 200 response with the admin credential, "" on any failure."""
        try:
            with urllib.request.urlopen(url, context=self._ssl, timeout=2) as resp:
                body: bytes = resp.read()
                return body.decode().strip() if resp.status == 200 else ""
        except (urllib.error.URLError, OSError, ValueError):
            return ""

    # --- clients -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for client tools: this cluster's KUBECONFIG and the binaries on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(
        self,
        tool: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self._bin(tool), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "kubectl", f"--kubeconfig={self.kubeconfig}", *args,
            input=input, check=check, timeout=timeout,
        )  # fmt: skip

    def create_namespace(self, name: str, timeout: float = 60.0) -> None:
        """Create a namespace and wait for its default service account (pod admission needs it)."""
        self.kubectl("create", "namespace", name)
        self.kubectl(
            "wait", "--for=create", "serviceaccount/default", "-n", name,
            f"--timeout={timeout:.0f}s", timeout=timeout + 10,
        )  # fmt: skip

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "helm", f"--kubeconfig={self.kubeconfig}", *args,
            input=input, check=check, timeout=timeout,
        )  # fmt: skip


# --- CLI: a background supervisor process owns the control plane ---------------------------

PID_FILE = "controlplane.pid"
READY_FILE = "ready"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(workdir: Path) -> int | None:
    try:
        pid = int((workdir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _serve(workdir: Path, real_node: bool) -> int:
    """Run in the background: start, mark ready, then hold until SIGTERM."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    (workdir / PID_FILE).write_text(f"{os.getpid()}\n")
    try:
        with contextlib.ExitStack() as stack:
            cp = stack.enter_context(ControlPlane(workdir, nodes=0 if real_node else 3))
            if real_node:
                # Imported here: the node module builds on this one.
                from tests.testenv.images import ensure_images
                from tests.testenv.node import RealNode
                from tests.testenv.showcase import install_showcase

                images = ensure_images()
                stack.enter_context(RealNode(cp, workdir / "node", images=images.archives))
                install_showcase(cp, images.server_image)
            (workdir / READY_FILE).write_text(cp.server + "\n")
            while True:
                time.sleep(3600)
    finally:
        for name in (READY_FILE, PID_FILE):
            (workdir / name).unlink(missing_ok=True)


def _up(workdir: Path, timeout: float, real_node: bool) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    if _read_pid(workdir) is not None and (workdir / READY_FILE).exists():
        print(f"control plane already running; KUBECONFIG={workdir / 'kubeconfig'}")
        return 0
    missing = missing_binaries(default_bin_dir())
    if missing:
        print(f"missing {', '.join(missing)}: run `make testenv` first", file=sys.stderr)
        return 1
    (workdir / READY_FILE).unlink(missing_ok=True)
    log = workdir / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                MODULE,
                "serve",
                "--workdir",
                str(workdir),
                *(["--real-node"] if real_node else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (workdir / READY_FILE).exists():
            print(f"control plane up: export KUBECONFIG={(workdir / 'kubeconfig').resolve()}")
            if real_node:
                print(
                    "the chart's operator runs in namespace modelrollout-system and the "
                    "ModelDeployment `sample` in namespace models: kubectl get pods -A"
                )
            return 0
        if proc.poll() is not None:
            print(f"control plane failed to start; end of {log}:\n{log_tail(log)}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    proc.terminate()
    print(f"control plane not ready after {timeout:.0f}s; see {workdir}/logs", file=sys.stderr)
    return 1


def _down(workdir: Path, timeout: float = 60.0) -> int:
    pid = _read_pid(workdir)
    if pid is None:
        print("control plane not running")
        (workdir / PID_FILE).unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(pid):
        # Its children die with it (PR_SET_PDEATHSIG).
        os.kill(pid, signal.SIGKILL)
    (workdir / PID_FILE).unlink(missing_ok=True)
    print("control plane stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testenv.controlplane")
    parser.add_argument("command", choices=["up", "down", "serve"])
    parser.add_argument("--workdir", type=Path, default=Path(".testenv"))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="one real node (containerd, kubelet, kube-proxy, CoreDNS; images from `make "
        "images`) instead of three kwok nodes",
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    if args.command == "up":
        return _up(workdir, args.timeout, args.real_node)
    if args.command == "down":
        return _down(workdir)
    return _serve(workdir, args.real_node)


__all__ = [
    "ChildDied",
    "ControlPlane",
    "KubectlError",
    "TestenvMissing",
    "default_bin_dir",
    "kubernetes_version",
    "missing_binaries",
]

if __name__ == "__main__":
    sys.exit(main())
