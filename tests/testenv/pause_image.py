"""A one-binary container image as a docker-archive tar, for a node without a registry.

The node's sandbox image is the pause binary that build.sh compiles; this wraps it (or any
static binary) into the archive format `docker save` writes, which containerd imports:

    write_single_binary_image(bin_dir / "pause", Path("/tmp/pause.tar"), PAUSE_IMAGE, ["/pause"])
    # ctr -n k8s.io images import /tmp/pause.tar

The archive holds manifest.json (the tag), the image config (os, architecture read from the
binary's ELF header, entrypoint, the layer's diff_id) and one uncompressed layer with the binary
at /<its file name>, mode 0755, owned by root. Timestamps are fixed, so the same binary always
gives the same image ID.

CLI: python -m tests.testenv.pause_image BINARY ARCHIVE [--name NAME] [--entrypoint PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

# The node's sandbox (pause) image: what kubelet's container runtime must be told to use.
PAUSE_IMAGE = "modelrollout.local/pause:3.10"

# ELF e_machine values and the OCI architecture each one runs on.
_ELF_ARCHITECTURES = {3: "386", 40: "arm", 62: "amd64", 183: "arm64", 243: "riscv64"}
_EPOCH = "1970-01-01T00:00:00Z"


def elf_architecture(binary: Path) -> str:
    """The OCI architecture (amd64, arm64, ...) of an ELF executable, from its header."""
    with binary.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise ValueError(f"{binary} is not an ELF executable")
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    try:
        return _ELF_ARCHITECTURES[machine]
    except KeyError:
        raise ValueError(f"{binary}: unsupported ELF machine {machine}") from None


def _layer(binary: Path) -> bytes:
    """An uncompressed layer tar holding only the binary, at the root, mode 0755, root-owned."""
    data = binary.read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(binary.name)
        info.size = len(data)
        info.mode = 0o755
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_single_binary_image(
    binary: Path, archive: Path, name: str, entrypoint: list[str]
) -> None:
    """Write a docker-archive tar of an image tagged `name` holding only `binary`.

    The binary lands at /<binary.name> (so /pause for the pause binary); `entrypoint` is the
    image's ENTRYPOINT, e.g. ["/pause"]. `archive` is replaced whole (written beside it first).
    """
    if not entrypoint:
        raise ValueError("an image needs an entrypoint")
    layer = _layer(binary)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": elf_architecture(binary),
        "os": "linux",
        "created": _EPOCH,
        "config": {"Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": _EPOCH, "created_by": f"COPY {binary.name} /"}],
    }
    config_json = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(config_json).hexdigest()}.json"
    layer_name = f"{layer_digest}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]

    partial = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(partial, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _add(tar, layer_name, layer)
            _add(tar, config_name, config_json)
            _add(tar, "manifest.json", json.dumps(manifest).encode())
        partial.replace(archive)
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Write a one-binary image as a docker-archive tar."
    )
    parser.add_argument("binary", type=Path)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--name", default=PAUSE_IMAGE)
    parser.add_argument("--entrypoint", help="default: /<binary's file name>")
    args = parser.parse_args(argv)
    binary: Path = args.binary
    entrypoint: str = args.entrypoint or f"/{binary.name}"
    write_single_binary_image(binary, args.archive, args.name, [entrypoint])


if __name__ == "__main__":
    main()
