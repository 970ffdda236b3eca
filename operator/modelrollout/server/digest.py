"""sha256 digests of model artifacts: a single file, or an MLflow-style directory.

A directory's digest is the sha256 of the lines ``"<sha256 of file>  <relative path>\\n"``
sorted by path, which is exactly what
``find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum | sha256sum`` prints,
so users can pin a directory without our tools.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_sha256(files: Mapping[str, bytes]) -> str:
    """Digest of a directory given as {relative posix path: content}."""
    lines = "".join(
        f"{bytes_sha256(files[rel])}  {rel}\n" for rel in sorted(files, key=lambda p: p.encode())
    )
    return bytes_sha256(lines.encode())


def path_sha256(path: Path) -> str:
    """Digest of a local file or directory, as the server computes it when loading."""
    if path.is_dir():
        files = {
            p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
        return tree_sha256(files)
    return bytes_sha256(path.read_bytes())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modelrollout.server.digest PATH", file=sys.stderr)
        return 2
    print(path_sha256(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
