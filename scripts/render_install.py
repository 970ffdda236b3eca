"""Render manifests/install.yaml from the Helm chart (`make manifests`).

install.yaml = a Namespace (Pod Security `restricted` enforced) + `helm template --include-crds`
of charts/modelrollout with default values, so `kubectl apply -f manifests/install.yaml`
installs the same thing as `helm install`.

Usage: python scripts/render_install.py [--check]  (--check: exit 1 when install.yaml is stale)
Helm: $HELM, else the test environment's cache (tests/testenv/build.sh), else PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from render_common import write_or_check  # scripts/ is sys.path[0] when run

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "modelrollout"
TARGET = REPO / "manifests" / "install.yaml"
RELEASE = "modelrollout"
NAMESPACE = "modelrollout-system"

HEADER = f"""\
# Generated from charts/modelrollout by scripts/render_install.py (`make manifests`); do not edit.
# kubectl apply --server-side -f manifests/install.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/part-of: modelrollout
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
"""


def find_helm() -> str:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    build = REPO / "tests" / "testenv" / "build.sh"
    out = subprocess.run(["bash", str(build), "--bin-dir"], capture_output=True, text=True)
    candidate = Path(out.stdout.strip()) / "helm"
    if out.returncode == 0 and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("helm")
    if found is None:
        raise SystemExit("helm not found: run `make testenv` (builds it) or set $HELM")
    return found


def render(helm: str) -> str:
    result = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds"],
        capture_output=True,
        text=True,
        check=True,
    )
    return HEADER + result.stdout


def main(argv: list[str]) -> int:
    return write_or_check(TARGET, render(find_helm()), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
