#!/usr/bin/env bash
# The one install procedure of the container images (Dockerfile targets `operator` and `server`).
# CI runs this same script (.ci/run), so a broken install line fails CI, not only an image build.
#   scripts/docker-install.sh PREFIX [SOURCE]
# Creates a virtualenv at PREFIX, installs modelrollout from SOURCE (default: this checkout)
# with the s3 extra (models and holdout sets at s3:// URIs) and the boosting extra (LightGBM and
# XGBoost models) and without the dev tools, and
# checks that every console script the images run starts.
set -euo pipefail

prefix="${1:?usage: docker-install.sh PREFIX [SOURCE]}"
source_dir="${2:-$(cd "$(dirname "$0")/.." && pwd)}"
python="${PYTHON:-python3}"

"$python" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --upgrade pip
"$prefix/bin/pip" install --quiet "$source_dir[s3,boosting]"

# Smoke test: the entry points of both images import everything they need.
for cmd in modelrollout-operator modelrollout-server modelrollout-validate kubectl-modelrollout; do
    "$prefix/bin/$cmd" --help >/dev/null
done
"$prefix/bin/python" -c "import modelrollout.handlers, modelrollout.server.app, modelrollout.server.grpc_service, lightgbm, xgboost"
# s3:// must resolve to s3fs (fsspec only names the missing package when a model is loaded).
"$prefix/bin/python" -c "from fsspec.core import url_to_fs; url_to_fs('s3://bucket/model.skops')"
echo "docker-install: modelrollout installed into $prefix"
