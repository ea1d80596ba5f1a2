"""The Slurm array script: what each task would run, checked by running the script with a stand-in ``dvc``
(there is no Slurm on the machines this project is tested on)."""

import os
import stat
import subprocess

from liif.config.params import load_params
from liif.study.repro import job_command
from liif.study.slurm import array_script


def test_each_task_runs_the_same_command_as_liif_repro(tmp_path):
    variants = list(load_params()["variants"])
    script = array_script(variants, root=tmp_path, gpus=1, cpus=8, hours=48)
    assert f"#SBATCH --array=0-{len(variants) - 1}\n" in script and "#SBATCH --gres=gpu:1\n" in script
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dvc").write_text('#!/bin/sh\necho "$@"\n')
    (fake / "dvc").chmod(stat.S_IRWXU)
    (tmp_path / "study.sbatch").write_text(script)
    for task in (0, 3, len(variants) - 1):
        env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": str(task)}
        done = subprocess.run(["bash", "study.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert lines[0].startswith(f"task {task}: {variants[task]} on ")
        assert lines[-1].split() == job_command(variants[task])[1:]
