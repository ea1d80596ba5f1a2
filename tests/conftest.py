"""Shared test helpers. Tests that read ../shared skip cleanly when it is absent."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "official-liif"
DATASETS = SHARED / "datasets"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (tests that read ../shared skip without it)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return need(FIXTURES)


@pytest.fixture
def datasets_dir() -> Path:
    return need(DATASETS)


TINY_ENCODER = {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": 8}
CPU_RUNTIME = {
    "device": "cpu",
    "threads": 0,
    "workers": 0,
    "nproc": 1,
    "compile": False,
    "channels_last": False,
    "save_every": 0,
    "tracking": {"enabled": False, "experiment": "t"},
}


def tiny_liif(**switches):
    from liif.models import LIIF

    torch.manual_seed(0)
    return LIIF(encoder=TINY_ENCODER, decoder_hidden=[32, 32], **switches).eval()


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth-plus-texture image in [0, 1] holding 8-bit values, like a real photo."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(
        torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=g), (h, w), mode="bilinear"
    )
    img = (0.8 * base[0] + 0.2 * torch.rand(3, h, w, generator=g)).clamp(0, 1)
    return torch.round(img * 255) / 255


def sh(*cmd, cwd) -> str:
    """Run a command with this venv's tools first on PATH; fail the test with its output when it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def study_copy(dest: Path, *profiles: str) -> Path:
    """A git repository at ``dest`` holding this checkout's tracked files with ``profiles`` applied, no results."""
    for rel in filter(None, sh("git", "ls-files", "-z", cwd=ROOT).split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for generated in ("metrics", "configs", "reports", "dvc.lock"):  # results of the default profile
        path = dest / generated
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    sh(sys.executable, "scripts/apply_profile.py", *profiles, cwd=dest)
    sh("git", "init", "-q", cwd=dest)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A", cwd=dest)
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", " + ".join(profiles), cwd=dest)
    return dest


def mlflow_runs(repo: Path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["liif-repro"])


needs_dvc = pytest.mark.skipif(
    shutil.which("dvc") is None and not (Path(sys.executable).parent / "dvc").exists(), reason="dvc is not installed"
)


TINY_MODEL_SECTION = {  # a params.yaml model section small enough to train in a test
    "name": "liif",
    "encoder": {"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8},
    "decoder_hidden": [8],
    "feat_unfold": True,
    "local_ensemble": True,
    "cell_decode": True,
}
