# syntax=docker/dockerfile:1
# Images of modelrollout, one per target (VERSION: pyproject.toml's `version`), named as the
# release workflow (.github/workflows/release.yaml) publishes them for linux/amd64 and arm64:
#   docker build --target server   -t ghcr.io/modelrollout/modelrollout-server:VERSION .
#   docker build --target operator -t ghcr.io/modelrollout/modelrollout-operator:VERSION .
# The install step is scripts/docker-install.sh, which CI also runs (.ci/run), so the
# images and CI install the package the same way. Everything is installed from wheels in
# the `base` stage; the final stages copy only the virtualenv onto a clean slim image
# (no compilers, no pip cache, no sources) and run as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim

# LightGBM's wheels link the system's OpenMP runtime (libgomp.so.1) instead of bundling it
# (lightgbm-org/LightGBM#7141) and the slim images lack it: the install's smoke test (`base`)
# and the images (`runtime`) import lightgbm, so both start from this stage.
FROM ${PYTHON_IMAGE} AS system
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

FROM system AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY scripts/docker-install.sh ./scripts/docker-install.sh
RUN bash scripts/docker-install.sh /opt/modelrollout /src \
    && find /opt/modelrollout -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/modelrollout/bin/python -m compileall -q /opt/modelrollout/lib

FROM system AS runtime
# uid/gid 65532: what the operator's pod templates run the model server as.
RUN groupadd --system --gid 65532 modelrollout \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin modelrollout
COPY --from=base /opt/modelrollout /opt/modelrollout
ENV PATH=/opt/modelrollout/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
WORKDIR /tmp

# The operator (charts/modelrollout runs it with its flags): Kopf's liveness endpoint on 8080,
# Prometheus /metrics on 9090; the root filesystem can be read-only (only /tmp is written).
FROM runtime AS operator
EXPOSE 8080 9090
CMD ["modelrollout-operator", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090"]

# The model server: Open Inference Protocol v2 and /metrics on port 8080, its gRPC form on 8081
# (as KServe and MLServer). Configured by
# MODELROLLOUT_* environment variables (see `modelrollout-server --help`); models on a
# PersistentVolumeClaim are read from /mnt/models/<claim>/... (pvc:// URIs).
FROM runtime AS server
ENV MODELROLLOUT_PORT=8080 MODELROLLOUT_GRPC_PORT=8081
EXPOSE 8080 8081
CMD ["modelrollout-server"]
