"""The download and prepare stages refuse a dataset name that would reach outside its folder."""

import pytest


def _victim(tmp_path):
    """A file beside the data folders that a dataset name must never reach."""
    victim = tmp_path / "victim" / "keep.txt"
    victim.parent.mkdir()
    victim.write_text("mine")
    return victim


@pytest.mark.integration
@pytest.mark.parametrize("stage", ["download.py", "prepare.py"])
@pytest.mark.parametrize("name", ["../../../victim", "/abs/victim"])
def test_a_dataset_name_outside_its_folder_is_refused_by_the_stages(tmp_path, stage, name):
    import subprocess
    import sys
    from pathlib import Path

    from liif.config.params import dump_yaml, load_params

    root = Path(__file__).resolve().parents[2]
    victim = _victim(tmp_path)
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    name = name.replace("/abs", str(tmp_path))
    params = load_params(root / "params.yaml")
    params["data"]["datasets"] = {name: {"source": "sample", "test": ["camera"]}}
    (work / "params.yaml").write_text(dump_yaml(params))
    args = (
        ["--raw", "data/raw", "--trusted", "t.json"]
        if stage == "download.py"
        else [name, "--raw", "data/raw", "--out", "data/prepared"]
    )
    done = subprocess.run(
        [sys.executable, str(root / "stages" / stage), *args], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"{stage.removesuffix('.py')}: params.yaml data.datasets: {name!r}: a name is a folder and DVC stage name: "
        "letters, digits, - and _ (no dots, spaces or slashes), starting with a letter or digit"
    ], done.stderr
    assert victim.read_text() == "mine"
