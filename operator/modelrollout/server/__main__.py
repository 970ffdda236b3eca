"""``modelrollout-server``: serve one scikit-learn model (see ``--help``)."""

from __future__ import annotations

import os
import sys

# One math thread per process before numpy loads: requests are small, and --workers
# (not BLAS threads) is how the server uses more cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def main(argv: list[str] | None = None) -> int:
    from modelrollout.server.config import parse_config
    from modelrollout.server.runner import run

    return run(parse_config(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
