"""The Slurm array script: what each task would run, checked by running the script with a stand-in ``dvc``
(there is no Slurm on the machines this project is tested on)."""

from liif.study.slurm import array_script


def test_cpu_only_tasks_ask_for_no_gpu(tmp_path):
    assert "--gres" not in array_script(["liif"], root=tmp_path, gpus=0)
