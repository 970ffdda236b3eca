# modelrollout: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test unit integration e2e lint crds manifests testenv cluster-up cluster-down \
        demo demo-kwok tools faults bench-server bench-operator bench-analysis bench-analysis-node fuzz-server images clean

## setup: virtualenv with the package and its dev tools (idempotent)
setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## testenv: build the Kubernetes control plane from Go modules into the cache (no-op when complete)
testenv:
	@bash tests/testenv/build.sh

## images: build the operator and server images with buildah into docker-archives in the cache (no-op when current)
images:
	@bash scripts/build-images.sh

## tools: install Prometheus, socat, nftables and the real node's containerd, runc, CNI plugins, iptables and conntrack from Debian's packages when missing
tools:
	@bash scripts/ensure-debian-tools.sh

## test: everything CI runs: lint, unit, integration (real control plane) and e2e tests
test: setup testenv tools images lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

## unit: the pure and in-process tests only (no control plane; about a minute)
unit: setup
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

## integration: the operator, chart and CLI against the real test control plane
integration: setup testenv tools
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

## e2e: rollouts judged from real Prometheus and model servers, and the demo
e2e: setup testenv tools
	$(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

## lint: ruff, mypy --strict on operator/, the import contracts (pure core, layers, independent routers), actionlint on .github/workflows (built by testenv)
lint: setup testenv
	$(VENV)/bin/ruff check operator tests benchmarks demo
	$(VENV)/bin/ruff format --check operator tests benchmarks demo
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	"$$(bash tests/testenv/build.sh --bin-dir)/actionlint" .github/workflows/*.y*ml

## crds: generate the CRD from the pydantic models (manifests/ and the chart)
crds: setup
	$(PY) scripts/render_crds.py

## manifests: render manifests/install.yaml from the chart (CRDs included) and the Argo CD argocd-cm snippet
manifests: setup testenv
	$(PY) scripts/render_install.py
	$(PY) scripts/render_argocd_cm.py

## cluster-up: the control plane and one real node running the images (`make cluster-down` stops it)
cluster-up: setup testenv tools images
	$(PY) -m tests.testenv.controlplane up --real-node

cluster-down: setup
	$(PY) -m tests.testenv.controlplane down

## demo: a real node, the chart's operator pod, model-server pods, a Traefik gateway and Prometheus; one canary promoted, one rolled back (KEEP=1 keeps it up)
demo: setup testenv tools images
	$(PY) -m demo.run $(if $(KEEP),--keep,)

## demo-kwok: the quick variant on fake nodes, model servers as processes (no root, no images)
demo-kwok: setup testenv tools
	$(PY) -m demo.run --kwok $(if $(KEEP),--keep,)

## fuzz-server: the model server's decoders (JSON, DataFrame, binary, gRPC) against 10,000 generated payloads each
fuzz-server: setup
	MODELROLLOUT_FUZZ_EXAMPLES=10000 $(PY) -m pytest -q tests/unit/test_server_fuzz.py tests/unit/test_server_grpc.py

## faults: the fault matrix, every fault at every moment of a canary and a blue/green rollout (docs/reliability.md)
faults: setup testenv tools
	$(PY) benchmarks/faults.py

## bench-server: modelrollout-server vs MLServer (separate venv in ~/.cache), wrk at 8 connections
bench-server: setup
	@bash scripts/ensure-debian-tools.sh wrk:wrk
	$(PY) benchmarks/model_server.py
	$(PY) benchmarks/pipeline_server.py
	$(PY) benchmarks/batch_server.py
	$(PY) benchmarks/grpc_server.py
	$(PY) benchmarks/shadow_server.py

## bench-operator: N = 100 and 1,000 ModelDeployments on kwok: time to Healthy, RSS, idle CPU/requests
bench-operator: setup testenv
	$(PY) benchmarks/operator_scale.py --n 100 --n 1000 --results benchmarks/RESULTS.md

## bench-analysis: decision latency (20 rollbacks) and PromQL queries per interval (10/100 rollouts)
bench-analysis: setup testenv tools
	$(PY) benchmarks/analysis_queries.py --results benchmarks/RESULTS.md
	$(PY) benchmarks/analysis_latency.py --runs 20 --results benchmarks/RESULTS.md

## bench-analysis-node: decision latency on real pods behind the Traefik gateway (10 rollbacks)
bench-analysis-node: setup testenv tools images
	$(PY) benchmarks/analysis_latency_node.py --runs 10 --results benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .testenv .demo .mypy_cache .ruff_cache .pytest_cache
