"""The Dockerfile's `operator` and `server` images, as archives a test node's containerd imports.

scripts/build-images.sh builds them with buildah (no registry, no docker daemon) into a cache
keyed by the sources, so a second call is a no-op; this runs it and names what it wrote:

    RealNode(control_plane, workdir, images=ensure_images().archives)
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-images.sh"
# Where the release publishes the images; build-images.sh names the archives the same way.
REGISTRY = "ghcr.io/modelrollout"


def image_name(target: str, version: str) -> str:
    """The published name of the Dockerfile's `target` image, which the archives carry."""
    return f"{REGISTRY}/modelrollout-{target}:{version}"


@dataclass(frozen=True)
class ImageArchives:
    """The docker-archive files, and the names containerd lists their images under after import
    (the published names, which the chart and the operator run by default)."""

    operator: Path
    server: Path
    operator_image: str
    server_image: str

    @property
    def archives(self) -> list[Path]:
        return [self.operator, self.server]


def ensure_images() -> ImageArchives:
    """Build both images unless the cache has them for these sources (the build logs to stderr)."""
    out = subprocess.run(["bash", str(SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    directory = Path(out.stdout.strip().splitlines()[-1])
    # The script's directory is <version>-<sourcehash>, the version being pyproject's.
    version = directory.name.rpartition("-")[0]
    return ImageArchives(
        operator=directory / "operator.tar",
        server=directory / "server.tar",
        operator_image=image_name("operator", version),
        server_image=image_name("server", version),
    )
