"""Job order of ``liif repro``: the last committed study's per-variant times replayed through params.yaml order
and through longest-first (``liif.study.repro.estimated_work``), on the same number of slots.

The times are the report's "Wall time per stage" table (reports/README.md: train + evaluate seconds of each
variant, in params.yaml order); the estimates come from the committed configs/ and the sample suite's training
set sizes (9 photographs, 273 squares of 128 px). Each slot takes the next job as soon as it is free, as the
runner does. Prints the simulated makespans and their ratio; asserts nothing.

    python benchmarks/schedule.py                 # 2 slots (one per core of the machine that ran the study)
    python benchmarks/schedule.py --slots 1 2 4 8
"""

import argparse
import heapq
import json
import re
from pathlib import Path

from machine import machine_line  # benchmarks/machine.py: a script's own folder leads sys.path

from liif.study.repro import estimated_work, longest_first

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = {"sample": 9, "squares": 273}  # the default profile's training photographs and their 128 px tiles


def measured_seconds(report: Path) -> dict[str, float]:
    """variant -> train + evaluate seconds, in the table's (params.yaml) order."""
    text = report.read_text()
    table = text.split("Wall time per stage", 1)[1]
    rows = re.findall(r"^\|\s*([\w.-]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*$", table, flags=re.M)
    return {name: float(train) + float(evaluate) for name, train, evaluate in rows}


def makespan(order: list[str], seconds: dict[str, float], slots: int) -> float:
    """When the last job ends if each of ``slots`` takes the next job of ``order`` as soon as it is free."""
    free = [0.0] * slots
    for variant in order:
        start = heapq.heappop(free)
        heapq.heappush(free, start + seconds[variant])
    return max(free)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[2])
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "README.md")
    args = parser.parse_args()
    seconds = measured_seconds(args.report)
    configs = {v: json.loads((ROOT / "configs" / f"{v}.json").read_text()) for v in seconds}
    work = {
        v: estimated_work(c, train_images=TRAIN_IMAGES.get((c["train"] or {}).get("dataset"), 1))
        for v, c in configs.items()
    }
    params_order = list(seconds)
    estimated = longest_first(params_order, work)
    oracle = longest_first(params_order, seconds)
    print(machine_line())
    print(f"{len(seconds)} variants, {sum(seconds.values()):.0f} s of jobs (train + evaluate, {args.report.name})")
    print(f"longest first by estimate: {', '.join(estimated)}\n")
    print("| slots | params order (s) | longest first, estimated (s) | vs params order | longest first, measured (s) |")
    print("|---|---|---|---|---|")
    for slots in args.slots:
        plain, longest, best = (makespan(o, seconds, slots) for o in (params_order, estimated, oracle))
        print(f"| {slots} | {plain:.0f} | {longest:.0f} | {longest / plain:.3f}x | {best:.0f} ({best / plain:.3f}x) |")


if __name__ == "__main__":
    main()
