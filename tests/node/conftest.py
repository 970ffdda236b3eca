"""The real-node cluster: a control plane with no fake node plus one real node running the
images built from our Dockerfile. Package-scoped: it lives only while these tests run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.prometheus import PrometheusProcess
from tests.integration.helm_chart import Release, installed_release
from tests.node.discovery import discovering_prometheus
from tests.testenv.controlplane import ControlPlane, TestenvMissing
from tests.testenv.gateway import Gateway, GatewayUnavailable
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


@pytest.fixture(scope="package")
def release(real_cluster: ControlPlane) -> Iterator[Release]:
    """The chart installed as users install it (the operator pod from our image), watching one
    namespace (`release.apps`); shared by the tests on the real node."""
    # With the Gateway API router's RBAC, as a user who routes through a gateway installs it.
    with installed_release(real_cluster, "--set", "trafficRouting.gatewayAPI=true") as rel:
        yield rel
        # Shown by pytest when a test failed: what the operator pod said.
        print(real_cluster.kubectl("logs", "-n", rel.namespace, f"deploy/{rel.name}-modelrollout",
                                   "--tail=200", check=False).stdout)  # fmt: skip


@pytest.fixture(scope="package")
def gateway(
    real_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Traefik as the cluster's Gateway API implementation (a Gateway accepting routes from
    every namespace); a missing build fails the tests with what to run."""
    the_gateway = Gateway(real_cluster, tmp_path_factory.mktemp("gateway"))
    try:
        the_gateway.start()
    except GatewayUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield the_gateway
    finally:
        the_gateway.stop()


@pytest.fixture
def discovering(real_node: RealNode, tmp_path: Path) -> Iterator[PrometheusProcess]:
    """Prometheus discovering the pods with the documented scrape configuration."""
    with discovering_prometheus(real_node, tmp_path / "prometheus") as prom:
        yield prom
