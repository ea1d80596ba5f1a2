"""The study as a Slurm job array: one task per variant, the same per-variant command as ``liif repro``.

    python -m liif.study.slurm > study.sbatch      # after `dvc repro --glob 'prepare*' configure` on the login node
    jobid=$(sbatch --parsable study.sbatch)
    sbatch --dependency=afterok:$jobid --wrap "dvc --wait-for-lock repro report"

Every task runs in the same checkout on a shared filesystem; DVC's ``--wait-for-lock`` makes
tasks wait for each other at the short moments one of them writes ``dvc.lock``.
"""

import argparse
import shlex
import sys
from pathlib import Path

from liif.config.params import load_params
from liif.errors import UserError
from liif.study.repro import job_command


def array_script(variants: list[str], *, root: Path, gpus: int = 1, cpus: int = 8, hours: int = 48) -> str:
    """An sbatch script whose task i trains and evaluates ``variants[i]`` in ``root``."""
    command = " ".join(shlex.quote(part) for part in job_command("$variant")).replace("'", '"')
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=liif-study",
        f"#SBATCH --array=0-{len(variants) - 1}",
        *([f"#SBATCH --gres=gpu:{gpus}"] if gpus else []),
        f"#SBATCH --cpus-per-task={cpus}",
        f"#SBATCH --time={hours}:00:00",
        "#SBATCH --output=logs/slurm/%x-%A_%a.log",
        "set -euo pipefail",
        f"cd {shlex.quote(str(root))}",
        "if [ -f .venv/bin/activate ]; then source .venv/bin/activate; fi",
        f"variants=({' '.join(shlex.quote(v) for v in variants)})",
        'variant="${variants[$SLURM_ARRAY_TASK_ID]}"',
        'echo "task $SLURM_ARRAY_TASK_ID: $variant on $(hostname)"',
        command,
    ]
    return "\n".join(lines) + "\n"


def study_variants(path: Path) -> list[str]:
    """The variants of params.yaml, checked as ``liif repro`` checks them before a task is queued for hours."""
    from liif.config.variants import check_params

    params = load_params(path)
    check_params(params, sections=("model", "train", "variants"))
    return list(params["variants"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liif.study.slurm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the shared checkout (default: this one)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per task (0: CPU only)")
    parser.add_argument("--cpus", type=int, default=8, help="CPU cores per task")
    parser.add_argument("--hours", type=int, default=48, help="time limit per task")
    args = parser.parse_args(argv)
    try:
        variants = study_variants(Path(args.root) / "params.yaml")
    except UserError as e:  # a bug keeps its traceback
        print(f"python -m liif.study.slurm: {e}", file=sys.stderr)
        return 2
    root = Path(args.root).resolve()
    sys.stdout.write(array_script(variants, root=root, gpus=args.gpus, cpus=args.cpus, hours=args.hours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
