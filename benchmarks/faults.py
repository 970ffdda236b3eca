"""The fault matrix (make faults): every fault at every moment of a canary and a blue/green rollout.

Starts its own control plane, then per strategy one lab (tests/e2e/fault_matrix.py): a fault-free
rollout first, then one rollout per (fault, moment). Writes the table between the markers in
docs/reliability.md (or prints it with --no-write).

    python benchmarks/faults.py [--strategy canary] [--fault etcd] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.fault_matrix import FAULTS, MOMENTS, STRATEGIES, Row, judge, lab, roll  # noqa: E402
from tests.e2e.harness import HTTPROUTE_CRD, MD_CRD  # noqa: E402
from tests.testenv.controlplane import ControlPlane  # noqa: E402

RESULTS = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- fault-matrix:begin -->", "<!-- fault-matrix:end -->"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def table(rows: list[Row]) -> str:
    lines = [
        "| strategy | fault | from | outcome | as fault-free | promoted on missing data "
        "| routing path as fault-free | requests failed | stepped forward after the fault "
        "| rollout took | 429s on the level |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        recovered = (
            "-" if r.recovered_s is None
            else "done during the fault" if r.recovered_s == 0
            else f"{r.recovered_s:.1f} s"
        )  # fmt: skip
        lines.append(
            f"| {r.strategy} | {r.fault} | {r.moment} | {r.outcome} | {_yes(r.same_outcome)} "
            f"| {'**yes**' if r.promoted_on_missing_data else 'no'} "
            f"| {_yes(r.same_routing)} | {r.failed_requests} | {recovered} "
            f"| {r.duration_s:.1f} s | {r.rejected} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    tried = [r for r in rows if r.fault != "none"]
    survived = sum(r.survived for r in tried)
    lost = [f"{r.strategy} / {r.fault} / {r.moment}" for r in tried if not r.survived]
    return (
        f"Faults tried: {len(tried)}. Survived (outcome, routing, analysis and requests as without "
        f"the fault): {survived}. Lost: {', '.join(lost) if lost else 'nothing'}."
    )


def write(section: str) -> None:
    text = RESULTS.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    RESULTS.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategy", action="append", choices=sorted(STRATEGIES))
    p.add_argument("--fault", action="append", help="only faults whose name contains this")
    p.add_argument("--no-write", action="store_true", help=f"print, do not touch {RESULTS.name}")
    args = p.parse_args()
    faults = [
        f for name, f in FAULTS.items()
        if not args.fault or any(part.lower() in name.lower() for part in args.fault)
    ]  # fmt: skip
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp, ControlPlane(Path(tmp) / "cp") as cp:
        for crd in (MD_CRD, HTTPROUTE_CRD):
            cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        for strategy in args.strategy or list(STRATEGIES):
            namespace = f"faults-{uuid.uuid4().hex[:6]}"
            cp.create_namespace(namespace)
            workdir = Path(tmp) / namespace
            workdir.mkdir()
            with lab(cp, namespace, workdir, strategy) as the_lab:
                baseline = roll(the_lab, None, None)
                rows.append(judge(strategy, None, "-", baseline, None))
                print(rows[-1], flush=True)
                for fault in faults:
                    for moment in MOMENTS[strategy]:
                        record = roll(the_lab, fault, moment)
                        rows.append(judge(strategy, fault, moment, record, baseline))
                        print(rows[-1], flush=True)
    how = "\n".join(f"- **{f.name}**: {f.how}." for f in faults)
    section = (
        f"Run {dt.date.today().isoformat()} on {platform.machine()}, {platform.system()} "
        f"(`{' '.join(['python benchmarks/faults.py', *sys.argv[1:]])}`).\n\n"
        f"{summary(rows)}\n\n{table(rows)}\n\nThe faults:\n{how}\n"
    )
    print(section)
    if not args.no_write:
        write(section)
        print(f"written to {RESULTS.relative_to(REPO)}")
    return 0 if all(r.survived for r in rows if r.fault != "none") else 1


if __name__ == "__main__":
    sys.exit(main())
