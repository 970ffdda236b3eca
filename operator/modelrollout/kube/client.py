"""Build a kubernetes ApiClient from a kubeconfig or the in-cluster service account."""

from __future__ import annotations

import os

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

# The API server's audit log and access logs tell our requests apart by this.
USER_AGENT = "modelrollout-operator"
# Pooled HTTP connections: one per worker thread of the shell.
POOL_SIZE = 16


def make_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """Kubeconfig when one is named (argument or $KUBECONFIG), else in-cluster, else ~/.kube."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration
        )
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException:
            config.load_kube_config(context=context, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = POOL_SIZE
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api
