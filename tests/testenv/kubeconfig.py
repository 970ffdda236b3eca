"""Kubeconfig files pointing at the test control plane with client-certificate credentials."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.testenv.pki import KeyPair

CONTEXT = "modelrollout-testenv"


def write_kubeconfig(path: Path, *, server: str, ca: Path, user: str, client: KeyPair) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
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
