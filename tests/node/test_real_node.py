"""The real node runs pods in containers: from our images, on the pod network, with cluster DNS
and the API server reachable at the `kubernetes` Service's ClusterIP through kube-proxy."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.testenv.controlplane import ControlPlane
from tests.testenv.images import ImageArchives
from tests.testenv.node import NODE_NAME, POD_SUBNET, RealNode
from tests.testenv.waiting import eventually

# Run in a pod from the server image: resolve the API server's Service name through the node's
# DNS, connect to it through kube-proxy, and print what was reached.
PROBE = """
import json, socket, ssl
address = socket.gethostbyname("kubernetes.default.svc.cluster.local")
ctx = ssl.create_default_context(cafile="/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
with socket.create_connection((address, 443), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="kubernetes.default.svc") as tls:
        tls.sendall(b"GET /readyz HTTP/1.1\\r\\nHost: k\\r\\nConnection: close\\r\\n\\r\\n")
        reply = tls.recv(4096).decode()
print(json.dumps({"address": address, "status": reply.split()[1]}))
"""


def test_the_node_is_ready_and_real(real_node: RealNode, real_cluster: ControlPlane) -> None:
    node = json.loads(real_cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"] == "v1.37.2"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == real_node.node_address


def test_a_pod_from_our_image_reaches_the_api_server_by_name(
    real_node: RealNode, real_cluster: ControlPlane, images: ImageArchives
) -> None:
    cp = real_cluster
    name = f"probe-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "probe", "image": images.server_image, "command": ["python", "-c", PROBE]}
            ],
        },
    }
    cp.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def finished() -> dict[str, Any] | None:
        got: dict[str, Any] = json.loads(cp.kubectl("get", "pod", name, "-o", "json").stdout)
        return got if got["status"].get("phase") in ("Succeeded", "Failed") else None

    done = eventually(finished, f"pod {name} finished", timeout=180)
    logs = cp.kubectl("logs", name).stdout
    assert done["status"]["phase"] == "Succeeded", logs
    container = done["status"]["containerStatuses"][0]
    assert container["containerID"].startswith("containerd://")
    assert done["status"]["podIP"] in {str(ip) for ip in POD_SUBNET.hosts()}
    reached = json.loads(logs.strip().splitlines()[-1])
    assert reached == {"address": "10.96.0.1", "status": "200"}
