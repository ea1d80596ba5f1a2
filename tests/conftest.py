"""Shared test helpers. Tests that read ../shared skip cleanly when it is absent."""

import copy
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from liif.config.variants import config_hash
from liif.models.checkpoint import save_checkpoint

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


def study_copy(dest: Path, *profiles: str, experiments: bool = False) -> Path:
    """A git repository at ``dest`` holding this checkout's tracked files with ``profiles`` applied, no results;
    with ``experiments``, also the study pipelines of experiments/ (each its own dvc.yaml, never run there, which
    a plain ``dvc status`` lists); without, their committed tables stay (the report reads one) but not their
    pipelines."""
    for rel in filter(None, sh("git", "ls-files", "-z", cwd=ROOT).split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    results = ["metrics", "configs", "reports", "dvc.lock"]  # of the default profile
    pipelines = [] if experiments else [p.relative_to(dest) for p in dest.glob("experiments/*/dvc.*")]
    for generated in [*results, *pipelines]:
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


def study_params() -> dict:
    """A complete params dict of the default study's shape (datasets, base sections, every variant with its role),
    written here so that a changed default in params.yaml changes no unit test; small models, same recipe."""
    photos = {
        "train": ["astronaut", "stereo_motorcycle", "hubble_deep_field", "china"],
        "val": ["grace_hopper", "moon"],
        "test": ["chelsea", "coffee", "camera"],
    }
    tasks = {"epochs": 60, "milestones": [45], "repeat": 1}
    return {
        "data": {
            "datasets": {
                "sample": {"source": "sample", **photos},
                "squares": {"source": "sample", **photos, "sizes": [128, 64, 32, 16], "tile": 128},
            }
        },
        "model": {
            "name": "liif",
            "encoder": {"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8},
            "decoder_hidden": [16, 16, 16, 16],
            "feat_unfold": True,
            "local_ensemble": True,
            "cell_decode": True,
        },
        "train": {
            "dataset": "sample",
            "val_split": "val",
            "epochs": 300,
            "batch_size": 8,
            "repeat": 8,
            "inp_size": 48,
            "scale_min": 1,
            "scale_max": 4,
            "sample_q": 256,
            "augment": True,
            "channel_shuffle": True,
            "lr": 1.0e-3,
            "milestones": [180, 255],
            "gamma": 0.2,
            "val_images": 10,
            "val_repeat": 2,
            "seed": 0,
            "amp": "fp32",
        },
        "eval": {
            "checkpoint": "epoch-last.pth",
            "task_checkpoint": "epoch-best.pth",
            "metrics": ["psnr", "ssim"],
            "datasets": {"sample": {"protocol": "div2k", "scales": [2, 3, 4, 6, 12]}},
        },
        "variants": {
            "liif": {"role": "base"},
            "liif-c": {"role": {"ablation": "cell_decode"}, "model": {"cell_decode": False}},
            "liif-u": {"role": {"ablation": "feat_unfold"}, "model": {"feat_unfold": False}},
            "liif-e": {"role": {"ablation": "local_ensemble"}, "model": {"local_ensemble": False}},
            "liif-d": {"role": {"ablation": "decoder_depth"}, "model": {"decoder_hidden": [16, 16]}},
            "liif-x2": {"role": "single-scale", "train": {"scale_min": 2, "scale_max": 2}},
            "liif-x3": {"role": "single-scale", "train": {"scale_min": 3, "scale_max": 3}},
            "liif-x4": {"role": "single-scale", "train": {"scale_min": 4, "scale_max": 4}},
            "metasr": {"role": "metasr", "model": {"name": "metasr", "predictor_hidden": 16}},
            "upsample-x2": {"role": "fixed-scale", "model": {"name": "fixed-scale", "scale": 2}},
            "upsample-x3": {
                "role": "fixed-scale",
                "model": {"name": "fixed-scale", "scale": 3},
                "train": {"inp_size": 32},
            },
            "upsample-x4": {
                "role": "fixed-scale",
                "model": {"name": "fixed-scale", "scale": 4},
                "train": {"inp_size": 24},
            },
            "lte": {"role": "successor", "model": {"name": "lte", "hidden_dim": 16, "decoder_hidden": [16, 16]}},
            "bicubic": {"role": "bicubic", "model": {"name": "bicubic"}},
            "liif-seed1": {"role": {"seed_of": "liif"}, "train": {"seed": 1}},
            "liif-seed2": {"role": {"seed_of": "liif"}, "train": {"seed": 2}},
            "sized-liif-32-64": {"role": "size-varied", "train": {"dataset": "squares", "task": [32, 64], **tasks}},
            "sized-upsample-32-64": {
                "role": "size-varied",
                "model": {"name": "fixed-scale", "scale": 2},
                "train": {"dataset": "squares", "task": [32, 64], **tasks},
            },
            "sized-liif-16-128": {"role": "size-varied", "train": {"dataset": "squares", "task": [16, 128], **tasks}},
            "sized-upsample-16-128": {
                "role": "size-varied",
                "model": {"name": "fixed-scale", "scale": 8},
                "train": {"dataset": "squares", "task": [16, 128], **tasks},
            },
        },
        "report": {"profile": "small study (tests)", "figures": True},
        "runtime": copy.deepcopy(CPU_RUNTIME),
    }


def tiny_config(epochs=3, **train) -> dict:
    """A resolved configuration (configs/<v>.json) of a LIIF small enough to train for a few epochs in a test."""
    return {
        "variant": "tiny",
        "model": {
            "name": "liif",
            "args": {
                "encoder": {"name": "edsr-baseline", "n_resblocks": 1, "n_feats": 8},
                "decoder_hidden": [16, 16],
                "feat_unfold": True,
                "local_ensemble": True,
                "cell_decode": True,
            },
        },
        "train": {
            "epochs": epochs,
            "batch_size": 4,
            "repeat": 4,
            "inp_size": 16,
            "scale_min": 1,
            "scale_max": 4,
            "sample_q": 64,
            "augment": True,
            "lr": 1e-3,
            "milestones": [2],
            "gamma": 0.5,
            "val_images": 1,
            "val_repeat": 2,
            "seed": 0,
            "val_split": "test",
            "patches": "downsampled",
            **train,
        },
    }


def tiny_sets(config, images, val_images=None):
    """Training and validation sets of a tiny_config run (validation on ``val_images``, default the same)."""
    from liif.train.patches import DownsampledPatches

    t = config["train"]
    common = dict(inp_size=t["inp_size"], scale_min=t["scale_min"], scale_max=t["scale_max"], sample_q=t["sample_q"])
    return (
        DownsampledPatches(images, augment=t["augment"], repeat=t["repeat"], seed=t["seed"], **common),
        DownsampledPatches(val_images or images, augment=False, repeat=t["val_repeat"], seed=t["seed"] + 1, **common),
    )


def saved_epoch(path: Path) -> int:
    """The epoch of the checkpoint at ``path``; 0 while there is none (checkpoints are renamed into place whole)."""
    from liif.models.checkpoint import read_checkpoint

    return read_checkpoint(path)["train_state"]["epoch"] if path.exists() else 0


def write_tree(prepared, name: str, sizes: dict, seed: int = 0):
    """A prepared dataset: HR images per split with MATLAB-bicubic X2 partners, and its manifest."""
    from liif.data.prepare import write_manifest
    from liif.images import matlab_bicubic, write_png

    for split, count in sizes.items():
        for i in range(count):
            hr = (random_image(64, 72, seed=seed + 10 * i + (split == "test")) * 255).round().byte().permute(1, 2, 0)
            write_png(hr.numpy(), prepared.hr(name, split) / f"{split}{i}.png")
            write_png(matlab_bicubic(hr.numpy(), scale=0.5), prepared.lr(name, split, 2) / f"{split}{i}x2.png")
    write_manifest(prepared.dataset(name), prepared.manifest(name))


class Server:
    """Serves ``files`` (name -> bytes) with Range support; ``cut[name] = n`` drops the connection after n bytes
    once; ``status[name] = code`` answers with that HTTP status."""

    def __init__(self):
        self.files, self.cut, self.status, self.requests = {}, {}, {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name in server.status:
                    self.send_error(server.status[name])
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[: server.cut.pop(name)]
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def png_bytes(h, w, seed):
    """A PNG of random 8-bit RGB noise."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def benchmark_tar() -> bytes:
    """A miniature benchmark.tar in the EDSR layout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("Set5", "Set14", "B100", "Urban100"):
            files = [(f"benchmark/{name}/HR/im.png", png_bytes(24, 24, 0))]
            files += [
                (f"benchmark/{name}/LR_bicubic/X{s}/imx{s}.png", png_bytes(24 // s, 24 // s, s)) for s in (2, 3, 4)
            ]
            for path, data in files:
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (random_image(h, w, seed=seed).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def write_png_16(samples: np.ndarray, path: Path):
    """A real 16-bit PNG (grey, grey+alpha, RGB or RGBA by the channel count), as the PNG spec lays it out:
    Pillow reads 16-bit PNGs but writes 16-bit ones only for greyscale."""
    h, w, c = samples.shape
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def output_cases(d: Path) -> list[tuple[str, str]]:
    (d / "folder.png").mkdir()
    (d / "file").write_bytes(b"x")
    (d / "taken.png").write_bytes(b"keep me")
    return [
        (d / "folder.png", f"{d}/folder.png: is a folder; name the output file, e.g. {d}/folder.png/out.png"),
        (d / "file" / "out.png", f"{d}/file/out.png: folder {d}/file is not a folder"),
        (d / "missing" / "out.png", f"{d}/missing/out.png: folder {d}/missing does not exist"),
        (d / "taken.png", f"{d}/taken.png already exists; choose another output, or pass --overwrite to replace it"),
        (d / "out.gif2", f"{d}/out.gif2: unknown output format '.gif2'; use .png, .jpg or .npy"),
    ]


def save_rgb(array: np.ndarray, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def save_run(model_dir, config: dict, *, epoch: int, summary_hash: str | None):
    """What liif.train.loop leaves: epoch-last.pth at ``epoch`` and, when the run finished, summary.json."""
    from liif.models import build_model

    metadata = {"variant": config["variant"], "config_hash": config_hash(config)}
    save_checkpoint(
        model_dir / "epoch-last.pth",
        model=build_model(config["model"]),
        train_state={"epoch": epoch},
        metadata=metadata,
    )
    if summary_hash:
        (model_dir / "summary.json").write_text(json.dumps({"config_hash": summary_hash, "mlflow_run_id": None}))
