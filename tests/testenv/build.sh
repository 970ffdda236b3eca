#!/usr/bin/env bash
# Build the test control plane (etcd, Kubernetes, kwok, helm), the components of a real node
# (kubelet, kube-proxy, CoreDNS, pause), actionlint (`make lint`), a Prometheus with
# Kubernetes discovery and the Traefik gateway with its Gateway API CRDs from Go modules into a
# cache outside the repo.
# Only missing binaries are built, so a complete cache makes this a no-op.
#   bash tests/testenv/build.sh            build what is missing
#   bash tests/testenv/build.sh --bin-dir  print the binary directory and exit
# Cache: ${MODELROLLOUT_TESTENV_DIR:-~/.cache/modelrollout/testenv/<k8s-version>}/bin
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"

# required_version GO_MOD MODULE: the version a go.mod requires (single-line or block form)
required_version() {
    sed -nE "s#^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+(v[^[:space:]]+).*#\\2#p" "$1" | head -1
}

k8s_version="$(required_version "$here/kubernetes/go.mod" k8s.io/kubernetes)"
if [[ -z "$k8s_version" ]]; then
    echo "testenv: cannot read the k8s.io/kubernetes version from $here/kubernetes/go.mod" >&2
    exit 1
fi
testenv_dir="${MODELROLLOUT_TESTENV_DIR:-$HOME/.cache/modelrollout/testenv/$k8s_version}"
bin_dir="$testenv_dir/bin"

if [[ "${1:-}" == "--bin-dir" ]]; then
    echo "$bin_dir"
    exit 0
fi

# Go is needed only when something is missing: a complete cache works without it.
need_go() {
    command -v go >/dev/null 2>&1 && return
    cat >&2 <<EOF
testenv: the Go toolchain is missing (no 'go' on PATH), and $bin_dir is incomplete.
The test control plane is built from Go modules; install Go >= 1.26 (https://go.dev/dl/),
put it on PATH, then run 'make testenv' again.
EOF
    exit 1
}

# The pause binary is C: a static build needs gcc and the static libc (libc6-dev on Debian).
need_cc() {
    command -v gcc >/dev/null 2>&1 && return
    cat >&2 <<EOF
testenv: gcc is missing (no 'gcc' on PATH), and $bin_dir/pause is not built yet.
It is built statically from the Kubernetes module source; install a C compiler and a static
libc (Debian: apt-get install gcc libc6-dev), then run 'make testenv' again.
EOF
    exit 1
}

# Build like upstream: static binaries, no VCS stamping, paths trimmed for reproducibility.
export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false"
export GOTOOLCHAIN=local

# Stamp the release into both version packages so /version, kubectl and helm report it.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
build_date="2026-10-27T12:01:04Z" # release date of $k8s_version on the module proxy
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
k8s_ldflags="-s -w$stamp"

mkdir -p "$bin_dir"
started=$SECONDS
built=0

# Cold build seconds of each binary, measured on a busy 2-core machine (README): an upper
# bound for "how long is left", so a cold build is never a silent wait. Each was built in the
# order below, so it counts only the packages the ones before it left unbuilt (kubelet
# shares all but about 100 of its 1,800 packages with the control plane).
declare -A cold_seconds=([kube-apiserver]=1270 [kube-controller-manager]=335 [kube-scheduler]=16
    [kubectl]=113 [etcd]=151 [kwok]=287 [helm]=204
    [kubelet]=70 [kube-proxy]=25 [coredns]=342 [pause]=1 [actionlint]=9 [prometheus]=380
    [traefik]=285)
remaining=0
for name in "${!cold_seconds[@]}"; do
    [[ -x "$bin_dir/$name" ]] || remaining=$((remaining + cold_seconds[$name]))
done
if ((remaining > 0)); then
    echo "testenv: binaries missing; a cold build takes up to $((remaining / 60 + 1)) min on 2 cores"
fi

# build NAME MODULE_DIR PACKAGE TAGS LDFLAGS
build() {
    local name="$1" module="$2" package="$3" tags="$4" ldflags="$5"
    if [[ -x "$bin_dir/$name" ]]; then
        echo "testenv: $name present"
        return
    fi
    need_go
    local t0=$SECONDS
    echo "testenv: building $name from $package (this can take several minutes) ..."
    (cd "$here/$module" && go build -p 2 -tags "$tags" -ldflags "$ldflags" \
        -o "$bin_dir/.$name.$$.tmp" "$package")
    mv "$bin_dir/.$name.$$.tmp" "$bin_dir/$name"
    built=$((built + 1))
    remaining=$((remaining - ${cold_seconds[$name]:-0}))
    echo "testenv: built $name in $((SECONDS - t0))s (total $((SECONDS - started))s;" \
        "up to $((remaining / 60)) min left)"
}

build kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver selinux,notest "$k8s_ldflags"
build kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager \
    selinux,notest "$k8s_ldflags"
build kube-scheduler kubernetes k8s.io/kubernetes/cmd/kube-scheduler selinux,notest "$k8s_ldflags"
build kubectl kubernetes k8s.io/kubernetes/cmd/kubectl selinux,notest "$k8s_ldflags"
build etcd etcd modelrollout.io/testenv/etcd "" "-s -w"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "" "-s -w"
helm_version="$(required_version "$here/helm/go.mod" helm.sh/helm/v3)"
build helm helm helm.sh/helm/v3/cmd/helm "" \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"

# actionlint checks .github/workflows (`make lint`); stamped with its release, which -version prints.
actionlint_version="$(required_version "$here/actionlint/go.mod" github.com/rhysd/actionlint)"
build actionlint actionlint github.com/rhysd/actionlint/cmd/actionlint "" \
    "-s -w -X github.com/rhysd/actionlint.version=$actionlint_version"

# The components of a real node. Upstream links kubelet with cgo; here it is static like the
# rest: in its dependency graph only the standard library (net, os/user) has cgo files, and
# their pure-Go forms serve.
build kubelet kubernetes k8s.io/kubernetes/cmd/kubelet selinux,notest "$k8s_ldflags"
build kube-proxy kubernetes k8s.io/kubernetes/cmd/kube-proxy selinux,notest "$k8s_ldflags"
# CoreDNS with its default plugin set, tags as its Makefile sets them; its release build
# stamps the tag (git describe) as the commit, which -version prints.
coredns_version="$(required_version "$here/coredns/go.mod" github.com/coredns/coredns)"
build coredns coredns github.com/coredns/coredns grpcnotrace \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$coredns_version"

# Prometheus with Kubernetes discovery (Debian's is built without it: its NEWS.Debian says
# "Kubernetes support has been completely removed"), only that discoverer compiled in; for
# tests/node/test_prometheus_discovery.py. Module version v0.3MM.P is release 3.MM.P.
prometheus_module="$(required_version "$here/prometheus/go.mod" github.com/prometheus/prometheus)"
prometheus_version="3.$((10#${prometheus_module:4:2})).${prometheus_module##*.}"
build prometheus prometheus github.com/prometheus/prometheus/cmd/prometheus \
    remove_all_sd,enable_kubernetes_sd \
    "-s -w -X github.com/prometheus/common/version.Version=$prometheus_version"

# Traefik, the real node's Gateway API implementation (tests/testenv/gateway.py): it routes by
# the HTTPRoute weights the operator writes. Stamped with its release, which `version` prints.
traefik_version="$(required_version "$here/traefik/go.mod" github.com/traefik/traefik/v3)"
build traefik traefik github.com/traefik/traefik/v3/cmd/traefik "" \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${traefik_version#v}"

# The Gateway API CRDs (standard channel) of the version Traefik is built against.
gateway_crds="$testenv_dir/etc/gateway-api"
if [[ ! -f "$gateway_crds/.complete" ]]; then
    need_go
    gateway_src="$(cd "$here/traefik" && go mod download sigs.k8s.io/gateway-api && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)"
    rm -rf "$gateway_crds" && mkdir -p "$gateway_crds"
    cp "$gateway_src"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$gateway_crds/"
    rm -f "$gateway_crds"/*_vap_*.yaml # an admission policy for upgrades, not a CRD
    chmod u+w "$gateway_crds"/*.yaml
    touch "$gateway_crds/.complete"
    echo "testenv: wrote the Gateway API CRDs into $gateway_crds"
fi

# pause (the pod sandbox's process): C, compiled statically from the Kubernetes module source
# like upstream's image; tests/testenv/pause_image.py wraps it into an image for containerd.
if [[ -x "$bin_dir/pause" ]]; then
    echo "testenv: pause present"
else
    need_go
    need_cc
    t0=$SECONDS
    k8s_src="$(cd "$here/kubernetes" && go mod download k8s.io/kubernetes && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
    echo "testenv: building pause from k8s.io/kubernetes/build/pause/linux/pause.c ..."
    gcc -static -O2 -s -Wall -Werror -DVERSION="$k8s_version" -o "$bin_dir/.pause.$$.tmp" \
        "$k8s_src/build/pause/linux/pause.c"
    mv "$bin_dir/.pause.$$.tmp" "$bin_dir/pause"
    built=$((built + 1))
    remaining=$((remaining - cold_seconds[pause]))
    echo "testenv: built pause in $((SECONDS - t0))s (total $((SECONDS - started))s)"
fi

# kwok ships no stages in its binary (kwokctl injects them); take the default node and pod
# stages from the kwok module source so pods turn Running/Ready on the fake nodes.
# Not pod-complete: it would mark every Job pod Succeeded (exit 0, no output) at once, a fake
# result; Job pods stay Running and tests write their terminated state (validation gate).
stages="$testenv_dir/etc/kwok-stages.yaml"
if [[ ! -f "$stages" ]]; then
    need_go
    mkdir -p "$testenv_dir/etc"
    kwok_src="$(cd "$here/kwok" && go mod download sigs.k8s.io/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        cat "$kwok_src/kustomize/stage/$f"
    done >"$stages.$$.tmp"
    mv "$stages.$$.tmp" "$stages"
    echo "testenv: wrote $stages"
fi

if ((built > 0)); then
    echo "testenv: $built binaries built in $((SECONDS - started))s into $bin_dir"
else
    echo "testenv: complete ($bin_dir)"
fi
