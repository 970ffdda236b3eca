"""The Dockerfile's layout: install once in `base`, slim non-root final stages."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.I)
        if m:
            current = [f"FROM {m.group(1)}"]
            stages[m.group(2)] = current
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def test_targets_and_install_procedure() -> None:
    stages = _stages()
    assert {"base", "runtime", "operator", "server"} <= set(stages)
    base = "\n".join(stages["base"])
    # The same script CI runs (.ci/run), so a broken install line fails CI too.
    assert "scripts/docker-install.sh /opt/modelrollout" in base


def test_final_images_are_slim_non_root_and_start_the_right_program() -> None:
    stages = _stages()
    runtime = "\n".join(stages["runtime"])
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert stages["runtime"][0] == "FROM ${PYTHON_IMAGE}"  # a clean image, not `base`
    assert "COPY --from=base /opt/modelrollout /opt/modelrollout" in runtime
    assert "USER 65532:65532" in runtime
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runtime)
    assert stages["server"][0] == "FROM runtime"
    assert 'CMD ["modelrollout-server"]' in stages["server"]
    assert "EXPOSE 8080" in stages["server"]
    assert stages["operator"][0] == "FROM runtime"
