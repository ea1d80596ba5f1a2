"""Held-out agreement: the default study's checkpoints scored on benchmark photographs the project never sees.

The sets and scales of the study's ``params.yaml`` (in the section its ``setting`` names), read from the
``benchmark`` folder (EDSR layout: ``<set>/HR``, ``<set>/LR_bicubic/X<s>``), with the benchmark protocol of spec
section 4 (Y-PSNR, shave = scale, greyscale originals on their grey level, shipped MATLAB LR at x2-x4,
PIL-bicubic down-sampling beyond). LIIF is the mean over its seed replicates with twice their sd; each
fixed-scale up-sampler only at its own scale. Variants are found by their declared roles, as in the report.

    dvc repro experiments/held-out/dvc.yaml      # from the repository root, after the default study; README.md here
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from liif.config.params import ParamsError, load_params, read_yaml
from liif.config.roles import Roles, study_roles
from liif.errors import run_stage
from liif.eval.scores import evaluate_pairs, load_trained
from liif.images import list_images
from liif.models import build_model

SETTING_KEYS = {"sets", "scales"}


def read_study(path: Path) -> tuple[str, dict, Path]:
    """The section of the study's params file that its ``setting`` names, checked, and the benchmark folder."""
    study = read_yaml(path)
    name = study.get("setting") if isinstance(study, dict) else None
    if not isinstance(name, str) or name in ("runtime", "benchmark") or not isinstance(study.get(name), dict):
        raise ParamsError(f"{path} setting: {name!r} names no section of the file; use quick or full")
    setting, where = study[name], f"{path} {name}"
    if set(setting) != SETTING_KEYS:
        raise ParamsError(f"{where}: expected the keys {', '.join(sorted(SETTING_KEYS))}, found {sorted(setting)}")
    sets, scales = setting["sets"], setting["scales"]
    if not isinstance(sets, list) or not sets or not all(isinstance(s, str) for s in sets):
        raise ParamsError(f"{where}.sets: expected a list of benchmark sets, e.g. [Set5, Set14, B100]")
    if not isinstance(scales, list) or not scales or not all(type(s) is int and s >= 2 for s in scales):
        raise ParamsError(f"{where}.scales: expected a list of integer scales of 2 or more, e.g. [2, 3, 4, 8]")
    if not isinstance(study.get("benchmark"), str):
        raise ParamsError(f"{path} benchmark: expected the folder of the benchmark sets")
    return name, setting, path.parent / study["benchmark"]


def scored_variants(roles: Roles) -> dict[str, list[str]]:
    """What the study reads, by role: LIIF and its seeds, Bicubic, MetaSR, the fixed-scale up-samplers."""
    return {
        "liif": [roles.base, *roles.replicates().get(roles.base, [])],
        "bicubic": [roles.bicubic],
        "metasr": [roles.metasr],
        "fixed": list(roles.fixed_scale()),
    }


def trained_variants(roles: Roles) -> list[str]:
    """The variants whose checkpoints (models/<v>) and configurations (configs/<v>.json) the study reads."""
    by_role = scored_variants(roles)
    return [*by_role["liif"], *by_role["metasr"], *by_role["fixed"]]


def mean_psnr(model, folder: Path, scale: int) -> float:
    lr_dir = folder / "LR_bicubic" / f"X{scale}" if scale <= 4 else None
    scores = evaluate_pairs(
        model, list_images(folder / "HR"), scale=scale, protocol="benchmark", lr_dir=lr_dir, grey_luma=True
    )
    return float(np.mean([s.psnr for s in scores]))


def held_out_table(scores: dict, roles: Roles, *, sets: list[str], scales: list[int]) -> pd.DataFrame:
    """One row per set and scale: LIIF's seed mean, twice its seed sd, and LIIF minus each baseline."""
    liif, fixed = scored_variants(roles)["liif"], roles.fixed_scale()
    rows = []
    for name in sets:
        for s in scales:
            seeds = [scores[v, name, s] for v in liif]
            row = {"set": name, "scale": f"x{s}", "LIIF": np.mean(seeds), "2 x seed sd": 2 * np.std(seeds, ddof=1)}
            row["minus Bicubic"] = row["LIIF"] - scores[roles.bicubic, name, s]
            row["minus MetaSR"] = row["LIIF"] - scores[roles.metasr, name, s]
            up = next((v for v, k in fixed.items() if k == s), None)
            row["minus up-sampler"] = row["LIIF"] - scores[up, name, s] if up else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="params.yaml", help="the study's params: setting, quick, full, benchmark")
    parser.add_argument("--params", default="../../params.yaml", help="the repository's params.yaml (the roles)")
    parser.add_argument("--configs", default="../../configs", help="the root's configs/<v>.json")
    parser.add_argument("--models", default="../../models", help="the root's trained models/<v>")
    parser.add_argument("--table", default="held_out.md")
    parser.add_argument("--scores", default="scores.json", help="every variant's mean PSNR per set and scale")
    args = parser.parse_args()
    name, setting, benchmark = read_study(Path(args.study))
    roles = study_roles(load_params(args.params))
    fixed = roles.fixed_scale()

    def model_of(variant: str):
        if variant == roles.bicubic:
            return build_model({"name": "bicubic", "args": {}})
        config = json.loads((Path(args.configs) / f"{variant}.json").read_text())
        return load_trained(config, Path(args.models) / variant / "epoch-last.pth").eval()

    print(f"held-out, setting {name}: {', '.join(setting['sets'])} at x{setting['scales']}", flush=True)
    scores = {}
    for variant in [v for group in scored_variants(roles).values() for v in group]:
        model = model_of(variant)
        for set_name in setting["sets"]:
            for s in setting["scales"]:
                if variant in fixed and fixed[variant] != s:
                    continue
                scores[variant, set_name, s] = mean_psnr(model, benchmark / set_name, s)
                print(f"{variant} {set_name} x{s}: {scores[variant, set_name, s]:.3f}", flush=True)
    table = held_out_table(scores, roles, sets=setting["sets"], scales=setting["scales"])
    Path(args.table).write_text(table.to_markdown(index=False, floatfmt="+.2f") + "\n")
    Path(args.scores).write_text(json.dumps({f"{v} {n} x{s}": p for (v, n, s), p in scores.items()}, indent=1))
    print(table.to_markdown(index=False, floatfmt="+.2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_stage("held-out", main))
