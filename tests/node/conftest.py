"""The real-node cluster: a control plane with no fake node plus one real node running the
images built from our Dockerfile. Package-scoped: it lives only while these tests run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testenv.controlplane import ControlPlane, TestenvMissing
from tests.testenv.images import ImageArchives, ensure_images
from tests.testenv.node import NodeUnavailable, RealNode


@pytest.fixture(scope="package")
def images() -> ImageArchives:
    """The Dockerfile's images for the current sources (built unless cached)."""
    return ensure_images()


@pytest.fixture(scope="package")
def real_node(
    tmp_path_factory: pytest.TempPathFactory, images: ImageArchives
) -> Iterator[RealNode]:
    """Missing tools fail the tests with what is missing: CI never skips them."""
    workdir = tmp_path_factory.mktemp("realnode")
    cp = ControlPlane(workdir / "cp", nodes=0)
    try:
        cp.start()
    except TestenvMissing as err:
        pytest.fail(str(err), pytrace=False)
    node = RealNode(cp, workdir / "node", images=images.archives)
    try:
        node.start()
    except NodeUnavailable as err:
        cp.stop()
        pytest.fail(str(err), pytrace=False)
    except BaseException:
        cp.stop()
        raise
    try:
        yield node
    finally:
        node.stop()
        cp.stop()


@pytest.fixture(scope="package")
def real_cluster(real_node: RealNode) -> ControlPlane:
    return real_node.cp
