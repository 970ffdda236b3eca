"""Kubeconfig files pointing at the test control plane with client-certificate credentials."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.testenv.pki import KeyPair

CONTEXT = "modelrollout-testenv"


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca: Path,
    user: str,
    client: KeyPair,
    tls_server_name: str | None = None,
) -> Path:
    """tls_server_name: the name to check the server's certificate against when `server` is an
    address the certificate does not name (a relay)."""
    cluster: dict[str, str] = {"server": server, "certificate-authority": str(ca)}
    if tls_server_name is not None:
        cluster["tls-server-name"] = tls_server_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(client.cert), "client-key": str(client.key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
