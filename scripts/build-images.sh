#!/usr/bin/env bash
# Builds the Dockerfile's `operator` and `server` targets with buildah, on a Python base image
# made here from Debian's packages (no registry needed), and writes them as docker-archive files
# named as the release publishes them, ghcr.io/modelrollout/modelrollout-{operator,server}:<version>
# (`ctr -n k8s.io images import` keeps the name): the names the chart and the operator use, so a
# node with the archives imported runs them without a pull (pull policy IfNotPresent).
#   scripts/build-images.sh                  build what is missing; last stdout line: the directory
#   scripts/build-images.sh --print-dir      print the directory for these sources and exit
#   scripts/build-images.sh --import ADDRESS also import both archives into containerd at ADDRESS
# Archives: ${MODELROLLOUT_IMAGES_DIR:-~/.cache/modelrollout/images}/<version>-<sourcehash>/
# {operator,server}.tar. Progress goes to stderr, so stdout is only the directory.
set -euo pipefail

cd "$(dirname "$0")/.."

import_address=""
print_dir=0
while (($#)); do
    case "$1" in
        --print-dir) print_dir=1 ;;
        --import)
            import_address="${2:?--import needs a containerd address}"
            shift
            ;;
        *)
            echo "usage: $0 [--print-dir] [--import ADDRESS]" >&2
            exit 2
            ;;
    esac
    shift
done

log() { echo "build-images: $*" >&2; }

# The build context is a snapshot of exactly what the Dockerfile COPYs: the git-tracked and
# untracked (not ignored) files, as they are in the working tree, without bytecode. The hash
# and the build both read the snapshot, so an edit during a build cannot give an archive the
# wrong name, and ignored files (e.g. operator/*.egg-info from `pip install -e`) stay out.
context="$(mktemp -d)"
trap 'rm -rf "$context" "$context".*' EXIT  # the snapshot, image IDs, the base's rootfs
inputs=(Dockerfile pyproject.toml README.md scripts/docker-install.sh operator)
{
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard -- "${inputs[@]}"
    else
        find "${inputs[@]}" -type f -print0
    fi
} | LC_ALL=C sort -zu |
    while IFS= read -r -d '' f; do
        # A tracked file deleted in the working tree is gone from the build too.
        [[ "$f" == *__pycache__* || "$f" == *.pyc || ! -f "$f" ]] || printf '%s\0' "$f"
    done |
    tar -c --null -T - -f - | tar -x -f - -C "$context"

# The version the chart and the operator name the images with (pyproject is the one source).
version="$(sed -nE 's/^version[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' "$context/pyproject.toml" | head -1)"
[[ -n "$version" ]] || { log "cannot read version from pyproject.toml"; exit 1; }
# Where .github/workflows/release.yaml publishes the images (the chart's image repositories).
registry="ghcr.io/modelrollout"

# --- The base image recipe: a stand-in for python:3.11-slim made from Debian's packages. ------
# minbase already has bash, findutils and passwd (groupadd/useradd) that the Dockerfile runs.
base_suite="bookworm"
base_packages="python3,python3-venv,python-is-python3,ca-certificates"
debian_mirror="${MODELROLLOUT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
debian_security="${MODELROLLOUT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
base_repo="localhost/modelrollout-python"

build_base() {
    local image="$1" rootfs="$context.rootfs.tar" ctr
    # As Debian's own images: no docs, man pages or translations (copyright files stay), and apt
    # keeps no binary caches, so an `apt-get install` in a RUN step leaves no 70 MB behind. The
    # options stay in the image's apt and dpkg configuration. No /dev: the runtime provides it.
    mmdebstrap --variant=minbase --include="$base_packages" \
        --aptopt='Acquire::Languages "none"' \
        --aptopt='Dir::Cache::pkgcache ""' --aptopt='Dir::Cache::srcpkgcache ""' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --skip=output/dev \
        "$base_suite" "$rootfs" \
        "deb $debian_mirror $base_suite main" \
        "deb $debian_mirror $base_suite-updates main" \
        "deb $debian_security $base_suite-security main" >&2
    ctr="$(buildah from --pull=never scratch)"
    # buildah add unpacks a local tar archive with its owners and modes (as Docker's ADD).
    buildah add --quiet "$ctr" "$rootfs" / >/dev/null
    # What the Dockerfile relies on from python:3.11-slim: python3 on PATH, a UTF-8 locale.
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd '["python3"]' --created-by "mmdebstrap $base_suite" "$ctr"
    buildah commit --quiet --rm "$ctr" "$image" >/dev/null
    rm -f "$rootfs"
}

# The recipe hash covers this function and every value it reads: a change rebuilds the base.
base_recipe_hash="$(
    { declare -f build_base; echo "$base_suite $base_packages $debian_mirror $debian_security"; } |
        sha256sum | cut -c1-12
)"
base_image="$base_repo:3.11-$base_suite-$base_recipe_hash"

# The source hash: every file of the snapshot (name and content), the base recipe and the
# images' names (an archive's name is inside it).
hash="$(
    cd "$context"
    { find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; echo "base $base_recipe_hash";
      echo "registry $registry"; } |
        sha256sum | cut -c1-16
)"
out_dir="${MODELROLLOUT_IMAGES_DIR:-$HOME/.cache/modelrollout/images}/$version-$hash"
targets=(operator server)

if ((print_dir)); then
    echo "$out_dir"
    exit 0
fi

import_archives() {
    [[ -n "$import_address" ]] || return 0
    local t
    for t in "${targets[@]}"; do
        log "importing $out_dir/$t.tar into containerd at $import_address"
        ctr --address "$import_address" -n k8s.io images import "$out_dir/$t.tar" >&2
    done
}

# Fast path: both archives for these sources exist (each is written under a temporary name
# and renamed, so an existing file is complete).
if [[ -f "$out_dir/operator.tar" && -f "$out_dir/server.tar" ]]; then
    log "up to date: $out_dir/operator.tar $out_dir/server.tar"
    import_archives
    echo "$out_dir"
    exit 0
fi

# Only a build needs the tools (ensure-debian-tools.sh also checks the test tools it always lists).
bash scripts/ensure-debian-tools.sh mmdebstrap:mmdebstrap buildah:buildah >&2

mkdir -p "$out_dir"
# One build at a time per sources (two test sessions may ask at once).
exec 9>"$out_dir/.lock"
flock 9
if [[ -f "$out_dir/operator.tar" && -f "$out_dir/server.tar" ]]; then
    import_archives
    echo "$out_dir"
    exit 0
fi

# Overlay storage when the kernel allows it; vfs (full copies per layer, slow) otherwise.
if [[ -z "${STORAGE_DRIVER:-}" ]]; then
    if buildah --storage-driver overlay images >/dev/null 2>&1; then
        export STORAGE_DRIVER=overlay
    else
        log "overlay storage unavailable, using vfs"
        export STORAGE_DRIVER=vfs
    fi
fi
log "buildah storage driver: $STORAGE_DRIVER"

if buildah inspect --type image "$base_image" >/dev/null 2>&1; then
    log "base image $base_image present"
else
    log "building base image $base_image from Debian's packages (mmdebstrap)"
    t0=$SECONDS
    build_base "$base_image"
    log "built $base_image in $((SECONDS - t0))s"
fi

# pip inside RUN reaches PyPI through this host's egress CA: the host's CA bundle is bind-mounted
# over the image's own bundle for the RUN steps only (a mount over a file that exists leaves
# nothing in a layer; a new mount point would). Debian's pip (the venv's first) reads that file,
# and the pip it upgrades to reads the system store, so no pip configuration is needed and the
# Dockerfile and the images are the same as with `docker build` on python:3.11-slim.
host_ca="${MODELROLLOUT_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
build_volumes=()
[[ ! -f "$host_ca" ]] || build_volumes=(--volume "$host_ca:/etc/ssl/certs/ca-certificates.crt:ro")

for t in "${targets[@]}"; do
    log "building target $t ($registry/modelrollout-$t:$version)"
    t0=$SECONDS
    # --layers: the base and runtime stages are reused by the second target and by later builds.
    # --network host: RUN steps use this machine's network as they are; buildah's default (a CNI
    # bridge) would leave a bridge and iptables rules behind on the host.
    buildah bud --layers --force-rm --pull=never --network host --target "$t" \
        --build-arg PYTHON_IMAGE="$base_image" "${build_volumes[@]}" \
        --iidfile "$context.$t.iid" --tag "localhost/modelrollout-$t:$version" "$context" >&2
    # By image ID (a concurrent build of other sources may move the tag); the archive's name
    # is the published one, which containerd imports as it is.
    rm -f "$out_dir/.$t.tar.tmp"
    buildah push --quiet "$(sed "s/^sha256://" "$context.$t.iid")" \
        "docker-archive:$out_dir/.$t.tar.tmp:$registry/modelrollout-$t:$version" >&2
    mv "$out_dir/.$t.tar.tmp" "$out_dir/$t.tar"
    log "built $out_dir/$t.tar in $((SECONDS - t0))s"
done

# Each source change adds about 2 GB of archives: keep these and the two newest others (a
# session on other sources may still be importing one of those), remove the rest.
images_root="$(dirname "$out_dir")"
# shellcheck disable=SC2012 # names are <version>-<hex hash>: no spaces or newlines
{ ls -1dt "$images_root"/*-*/ 2>/dev/null || true; } | sed 's:/$::' | { grep -vxF "$out_dir" || true; } | tail -n +3 |
    while read -r old; do
        log "removing old archives $old"
        rm -rf "$old"
    done

import_archives
echo "$out_dir"
