"""GPU check for a first GPU lease: the CUDA tests' results and the GPU benchmarks as ONE markdown table.

``bash benchmarks/gpu_check.sh`` runs it (environment, optional wheels). Rows (name | result | detail):

* ``device``: what ran;
* ``cuda test: <test>``: one per test case of tests/integration/test_cuda.py, run here through pytest (pass / fail /
  no GPU / skipped; a passing row's detail holds what the test recorded, e.g. its largest difference);
* ``train <mode>, synthetic`` and ``train <mode>, real data`` (steps/s), modes fp32, bf16 and compiled
  (fp32 under torch.compile): the paper configuration (EDSR-baseline-LIIF, batch 16, 48x48 inputs, 2304
  queries). Synthetic batches already sit on the device (``benchmarks/train_step.py``'s batch and timing);
  real data are photographs of the sample suite prepared by ``liif.data.prepare`` and fed by
  ``liif.train.loop.make_loader`` (``runtime.workers: auto`` workers, pinned memory on CUDA) through
  ``liif.train.loop.train_one_epoch``: the gap between the two rows is the cost of loading;
* ``decode 64->256`` and ``decode 48->480`` (output pixels/s of ``liif.eval.render.render_image``);
* ``liif repro --jobs auto``: the tiny-profile pipeline in a study copy (tests/conftest.py ``study_copy``),
  on CUDA only, in the background while the CUDA tests run; the benchmarks start once it has finished.

Each measurement's detail holds its peak GPU memory (``torch.cuda.max_memory_allocated``). A measurement
that would overrun ``--budget`` is skipped and says so. Without CUDA it runs a CPU subset in about a
minute: a small model, few steps (the detail says so), and every CUDA-only row reads "no GPU". Exit
status 1 when a row failed.

    bash benchmarks/gpu_check.sh
    python benchmarks/gpu_check.py --no-tests      # the benchmarks alone (PYTHONPATH=. where liif is not installed)
"""

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
from machine import machine_line  # benchmarks/machine.py: needs torch only, not the project

try:  # a bare GPU machine may lack the project's dependencies (pydantic): they travel as wheels (gpu_check.sh)
    from train_step import make_batch, time_steps  # benchmarks/train_step.py: benchmarks/ leads sys.path

    from liif.device import resolve_device, resolve_workers
    from liif.eval.render import DEFAULT_CHUNK, render_image
    from liif.models import LIIF
    from liif.train.distributed import Ranks
    from liif.train.loop import AMP_DTYPES, grad_scaler, make_loader, train_one_epoch
except ImportError as e:
    MISSING = e
else:
    MISSING = None

ROOT = Path(__file__).resolve().parents[1]
NO_GPU = "no GPU"
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]  # colour photographs of the sample suite, >= 300 px a side
MODES = ("fp32", "bf16", "compiled")
DECODE_CASES = {"64->256": ((64, 64), (256, 256)), "48->480": ((48, 48), (480, 480))}
REPRO = "liif repro --jobs auto (tiny profile)"
# Seconds a measurement may take on the GPU (compiling included); one is skipped when less of the budget is left.
NEEDS = {"fp32": 30, "bf16": 30, "compiled": 120, "decode": 20}

# (model arguments, batch, queries, synthetic warm-up / timed steps, real-data steps per epoch, decode repeats)
PAPER = {
    "model": {"encoder": {"name": "edsr-baseline"}},
    "batch": 16,
    "sample_q": 2304,
    "warmup": 5,
    "steps": 30,
    "epoch_steps": 30,
    "repeat": 3,
    "label": "paper configuration (EDSR-baseline-LIIF, batch 16, 48x48, 2304 queries)",
}
CPU_SUBSET = {
    "model": {"encoder": {"name": "edsr-baseline", "n_resblocks": 2, "n_feats": 16}, "decoder_hidden": [32, 32]},
    "batch": 4,
    "sample_q": 256,
    "warmup": 1,
    "steps": 5,
    "epoch_steps": 4,
    "repeat": 1,
    "label": "CPU subset: small model (EDSR-baseline 2x16, decoder 2x32), batch 4, 48x48, 256 queries "
    "(the paper size takes ~19 s a step on 2 cores)",
}


def row(name: str, result, detail: str = "") -> dict:
    return {"name": name, "result": str(result), "detail": detail}


def failure(name: str, error: BaseException) -> dict:
    lines = [line for line in str(error).splitlines() if line.strip()] or [""]
    return row(name, "fail", f"{type(error).__name__}: {lines[0][:300]}")


def print_table(rows: list[dict]):
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    print("| name | result | detail |\n|---|---|---|")
    for r in rows:
        print(f"| {cell(r['name'])} | {cell(r['result'])} | {cell(r['detail'])} |")


# ---- CUDA tests (tests/integration/test_cuda.py through pytest) -------------------------------------------------------


def cuda_test_rows(junit: Path | None, pytest_log: Path | None) -> list[dict]:
    if junit is None or not junit.is_file():
        tail = pytest_log.read_text(errors="replace").strip().splitlines()[-1:] if pytest_log else []
        return [row("cuda tests", "fail", f"pytest wrote no {junit}: {' '.join(tail)[:300]}")]
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"cuda test: {case.get('name')}"
        properties = ", ".join(f"{p.get('name')} {p.get('value')}" for p in case.iter("property"))
        seconds = f"{float(case.get('time') or 0):.1f} s"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            message = (bad.get("message") or bad.text or "").strip().splitlines() or [""]
            rows.append(row(name, "fail", message[0][:300]))
        elif skipped is not None:
            reason = (skipped.get("message") or "").strip()
            rows.append(row(name, NO_GPU if reason == NO_GPU else "skipped", "" if reason == NO_GPU else reason))
        else:
            rows.append(row(name, "pass", ", ".join(filter(None, [properties, seconds]))))
    return rows or [row("cuda tests", "fail", f"{junit} holds no test case")]


# ---- training steps per second ---------------------------------------------------------------------------


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_peak(device):
    """Free what earlier measurements left and restart the peak counter."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak(device) -> str:
    if device.type != "cuda":
        return f"peak GPU memory: {NO_GPU}"
    return f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"


def new_model(config: dict, device) -> torch.nn.Module:
    torch.manual_seed(0)
    return LIIF(**config["model"]).to(device).train()


def prepare_photos(workdir: Path) -> list[torch.Tensor]:
    """The sample suite's photographs written by liif.sources, prepared (HR) by liif.data.prepare, loaded by liif.train.patches."""
    from liif.data.layout import PreparedData
    from liif.data.prepare import prepare_split
    from liif.sources.sample import export_sample_suite
    from liif.train.patches import load_images

    raw = export_sample_suite(PHOTOS, workdir / "raw")
    prepared = PreparedData(workdir / "prepared")
    prepare_split(raw, prepared, "photos", "train", lr_scales=[])
    return load_images(prepared.hr("photos", "train"))


def real_loader(images: list[torch.Tensor], config: dict, device):
    """The training loader of the paper's recipe (random scale x1-x4, flips, ``sample_q`` queries) over the
    photographs: one epoch is ``epoch_steps`` whole batches."""
    from liif.train.patches import DownsampledPatches

    samples = config["batch"] * config["epoch_steps"]
    if samples % len(images):
        raise ValueError(f"{samples} samples an epoch are not a multiple of {len(images)} photographs")
    ds = DownsampledPatches(
        images,
        inp_size=48,
        scale_min=1,
        scale_max=4,
        augment=True,
        sample_q=config["sample_q"],
        repeat=samples // len(images),
    )
    workers = resolve_workers("auto", device)
    loader = make_loader(
        ds, batch_size=config["batch"], seed=0, shuffle=True, workers=workers, pin_memory=device.type == "cuda"
    )
    return loader, workers


def step_model(mode: str, config: dict, device, compiled_cache: dict):
    """A fresh model for fp32 and bf16; for ``compiled`` one torch.compile-d model shared by both of its rows
    (the real-data row then times no compilation)."""
    if mode != "compiled":
        return new_model(config, device)
    if "model" not in compiled_cache:
        compiled_cache["model"] = torch.compile(new_model(config, device))
    return compiled_cache["model"]


def synthetic_rate(mode: str, config: dict, device, compiled_cache: dict) -> tuple[float, str]:
    fresh_peak(device)
    model = step_model(mode, config, device, compiled_cache)
    batch = make_batch(config["batch"], config["sample_q"], device)
    warmup = config["warmup"] + (1 if mode == "compiled" else 0)
    amp = "bf16" if mode == "bf16" else None
    seconds = time_steps(model, batch, steps=config["steps"], warmup=warmup, amp=amp, device=device)
    detail = (
        f"median of {config['steps']} steps after {warmup} warm-up, batches already on {device.type}; {peak(device)}"
    )
    return 1 / seconds, detail


def real_rate(mode: str, config: dict, device, loader, workers: int, epoch: int, compiled_cache: dict):
    """Steps per second over one epoch of real batches after a warm-up epoch (train_one_epoch: host->device
    copy, the step, and the loss read back every step, as training does)."""
    fresh_peak(device)
    model = step_model(mode, config, device, compiled_cache)
    dtype = AMP_DTYPES["bf16" if mode == "bf16" else "fp32"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = grad_scaler(dtype, device)
    common = dict(device=device, amp_dtype=dtype, scaler=scaler, ranks=Ranks())
    with contextlib.redirect_stderr(io.StringIO()):  # train_one_epoch's progress bar
        train_one_epoch(model, loader, optimizer, epoch=epoch, **common)
        sync(device)
        began = time.perf_counter()
        train_one_epoch(model, loader, optimizer, epoch=epoch + 1, **common)
        sync(device)
    seconds = time.perf_counter() - began
    pinned = ", pinned memory" if loader.pin_memory else ""
    detail = (
        f"{len(loader)} steps after a warm-up epoch, {len(PHOTOS)} sample-suite photographs prepared by "
        f"liif.data.prepare, {workers} loader workers{pinned}; {peak(device)}"
    )
    return len(loader) / seconds, detail


def time_left(deadline: float, need: float) -> str | None:
    """None when ``need`` seconds remain before ``deadline``; else why the measurement is skipped."""
    left = deadline - time.monotonic()
    return None if left >= need else f"{left:.0f} s left of the time budget, it needs about {need:.0f} s"


def training_rows(config: dict, device, workdir: Path, *, deadline: float) -> list[dict]:
    rows, compiled_cache, rates = [], {}, {}
    subset = "" if device.type == "cuda" else f"; {config['label']}"
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bars of liif.sources, .prepare, .samples
            images = prepare_photos(workdir)
        loader, workers = real_loader(images, config, device)
    except Exception as e:  # a broken data path fails its rows; the synthetic rows still run
        loader, data_error = None, e
    for i, mode in enumerate(MODES):
        names = {kind: f"train {mode}, {kind} (steps/s)" for kind in ("synthetic", "real data")}
        if mode == "compiled" and device.type != "cuda":
            detail = "torch.compile is timed on CUDA only (compiling takes minutes on this CPU)"
            rows += [row(names["synthetic"], NO_GPU, detail), row(names["real data"], NO_GPU, detail)]
            continue
        short = time_left(deadline, NEEDS[mode] + NEEDS["decode"])  # the decode rows come after these
        if short:
            rows += [row(names["synthetic"], "skipped", short), row(names["real data"], "skipped", short)]
            continue
        try:
            rates[mode], detail = synthetic_rate(mode, config, device, compiled_cache)
            rows.append(row(names["synthetic"], f"{rates[mode]:.3g}", detail + subset))
        except Exception as e:
            rows.append(failure(names["synthetic"], e))
        if loader is None:
            rows.append(failure(names["real data"], data_error))
            continue
        if mode not in rates:
            rows.append(row(names["real data"], "fail", f"the synthetic {mode} step failed: see its row"))
            continue
        try:
            rate, detail = real_rate(mode, config, device, loader, workers, 10 * i, compiled_cache)
            ratio = f"{rate / rates[mode]:.2f}x of synthetic, "
            rows.append(row(names["real data"], f"{rate:.3g}", ratio + detail + subset))
        except Exception as e:
            rows.append(failure(names["real data"], e))
    compiled_cache.clear()
    return rows


# ---- decoding ---------------------------------------------------------------------------------------------


def decode_input(h: int, w: int) -> torch.Tensor:
    """benchmarks/decode.py's input: smooth noise holding 8-bit values, (3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(1)
    lr = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), (h, w), mode="bicubic")[0]
    return torch.round(lr.clamp(0, 1) * 255) / 255


def best_render(model, lr, size, device, *, repeat: int, chunk: int | None = None) -> float:
    """Best seconds of ``repeat`` renders (after a warm-up render on CUDA: kernels, cuDNN's choice)."""
    chunk = chunk or DEFAULT_CHUNK
    if device.type == "cuda":
        render_image(model, lr, size, device=device, chunk=chunk)
    best = math.inf
    for _ in range(repeat):
        sync(device)
        began = time.perf_counter()
        render_image(model, lr, size, device=device, chunk=chunk)
        best = min(best, time.perf_counter() - began)
    return best


def decode_rows(config: dict, device, *, deadline: float) -> list[dict]:
    rows = []
    subset = "" if device.type == "cuda" else f"; CPU subset: the small model, {config['repeat']} render"
    for case, ((h, w), size) in DECODE_CASES.items():
        name = f"decode {case} (px/s)"
        short = time_left(deadline, NEEDS["decode"] / len(DECODE_CASES))
        if short:
            rows.append(row(name, "skipped", short))
            continue
        try:
            fresh_peak(device)
            model = new_model(config, device).eval()
            lr = decode_input(h, w)
            pixels = size[0] * size[1]
            best = best_render(model, lr, size, device, repeat=config["repeat"])
            detail = (
                f"render_image, default tile and chunk ({DEFAULT_CHUNK}), output back on the CPU, best of "
                f"{config['repeat']}; {peak(device)}"
            )
            if device.type == "cuda":  # the default chunk is the CPU's best; a GPU may want larger calls
                fresh_peak(device)
                big = best_render(model, lr, size, device, repeat=config["repeat"], chunk=16 * DEFAULT_CHUNK)
                detail += f"; chunk {16 * DEFAULT_CHUNK}: {pixels / big:,.0f} px/s, {peak(device)}"
            detail += subset
            rows.append(row(name, f"{pixels / best:,.0f}", detail))
            del model
        except Exception as e:
            rows.append(failure(name, e))
    return rows


# ---- liif repro -------------------------------------------------------------------------------------------


def tool_env(pythonpath: Path | None = None) -> dict:
    """This interpreter's folder first on PATH (dvc, python), as tests/conftest.py's ``sh`` does."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def make_study_copy(dest: Path) -> Path:
    """tests/conftest.py's ``study_copy`` with the tiny profile. Where this tree is no git checkout (a copied
    working tree), its files that git would not ignore are first made into a temporary one to copy from."""
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest

    if (ROOT / ".git").exists():
        return conftest.study_copy(dest, "profiles/tiny.yaml")
    source = dest.parent / "source"
    git_dir = dest.parent / "source.git"
    conftest.sh("git", "--git-dir", str(git_dir), "init", "-q", cwd=dest.parent)
    listed = conftest.sh(
        *("git", "--git-dir", str(git_dir), "--work-tree", str(ROOT)),
        *("ls-files", "-z", "--others", "--exclude-standard"),
        cwd=ROOT,
    )
    for rel in filter(None, listed.split("\0")):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, source / rel)
    conftest.sh("git", "init", "-q", cwd=source)
    conftest.sh("git", "add", "-A", cwd=source)
    conftest.sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "working tree", cwd=source)
    saved, conftest.ROOT = conftest.ROOT, source
    try:
        return conftest.study_copy(dest, "profiles/tiny.yaml")
    finally:
        conftest.ROOT = saved


class ReproRun:
    """``python -m liif.cli repro --jobs auto`` in a tiny-profile study copy, in the background (it runs while
    the CUDA tests do, so that both fit the budget; the benchmarks wait until it has finished)."""

    def __init__(self, logs: Path):
        self.log_path = logs / "repro.log"
        self.tmp = tempfile.TemporaryDirectory(prefix="gpu-check-repro-")
        self.proc, self.result, self.notes = None, None, []

    def start(self, device, *, force: bool = False):
        if device.type != "cuda" and not force:
            self.result = row(REPRO, NO_GPU, "a pipeline-level check, run on CUDA only")
        elif shutil.which("git") is None:
            self.result = row(REPRO, "skipped", "git is not installed")
        elif shutil.which("dvc", path=tool_env()["PATH"]) is None:
            self.result = row(REPRO, "skipped", "dvc is not installed (pip install -e '.[pipeline]')")
        else:
            try:
                self._launch()
            except Exception as e:
                self.result = failure(REPRO, e)
        return self

    def _launch(self):
        self.repo = make_study_copy(Path(self.tmp.name) / "repo")
        self.env = tool_env(pythonpath=self.repo)  # the stages import the copy's liif
        command = [sys.executable, "-m", "liif.cli", "repro"]
        if subprocess.run([*command, "--help"], cwd=self.repo, env=self.env, capture_output=True).returncode:
            self.result = row(REPRO, "skipped", "liif repro not available")
            return
        if importlib.util.find_spec("mlflow") is None:  # the tiny profile tracks its runs with MLflow
            self.env["LIIF_RUNTIME"] = json.dumps({"tracking": {"enabled": False, "experiment": "liif-repro"}})
            self.notes.append("MLflow is not installed: tracking off (LIIF_RUNTIME)")
        self.began = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [*command, "--jobs", "auto"],
                cwd=self.repo,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def finish(self, *, until: float) -> dict:
        """Wait for the run until ``until`` (time.monotonic), then judge it: exit status and ``dvc status``."""
        try:
            if self.result is None:
                self.result = self._judge(until)
        except Exception as e:
            self.result = failure(REPRO, e)
        finally:
            self.tmp.cleanup()
        return self.result

    def _judge(self, until: float) -> dict:
        try:
            code = self.proc.wait(timeout=max(1.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)  # liif repro stops its jobs the way DVC expects
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            seconds = time.monotonic() - self.began
            return row(REPRO, "fail", f"not finished after {seconds:.0f} s, the time it may take; log {self.log_path}")
        seconds = time.monotonic() - self.began
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        if code:
            last = (lines or [""])[-1][:250]
            return row(REPRO, "fail", f"exit {code} after {seconds:.0f} s: {last}; log {self.log_path}")
        status = subprocess.run(["dvc", "status"], cwd=self.repo, env=self.env, capture_output=True, text=True)
        if status.returncode or "up to date" not in status.stdout:
            return row(REPRO, "fail", f"finished in {seconds:.0f} s, but dvc status: {status.stdout.strip()[:200]}")
        models = self.repo / "models"
        variants = len([p for p in models.iterdir() if p.is_dir()]) if models.is_dir() else 0
        slots = torch.cuda.device_count() if torch.cuda.is_available() else cpu_slots()
        detail = f"{variants} variants in {seconds:.0f} s, {slots} job slot(s); dvc status clean"
        return row(REPRO, "pass", "; ".join([detail, *self.notes]))


def cpu_slots() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_cuda_tests(logs: Path, *, timeout: float) -> list[dict]:
    """pytest tests/integration/test_cuda.py (JUnit XML with the tests' recorded properties), one row per test case."""
    junit, log = logs / "cuda-tests.xml", logs / "pytest.log"
    junit.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=legacy"]
    with open(log, "w") as out:
        try:
            subprocess.run(
                [*command, f"--junitxml={junit}", "tests/integration/test_cuda.py"],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return [
                row(
                    "cuda tests",
                    "fail",
                    f"pytest tests/integration/test_cuda.py did not finish in {timeout:.0f} s; log {log}",
                )
            ]
    return cuda_test_rows(junit, log)


# ---- main -------------------------------------------------------------------------------------------------


def device_row(device) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        count = torch.cuda.device_count()
        tf32 = f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN {torch.backends.cudnn.allow_tf32}"
        detail = (
            f"{name} x{count}, torch {torch.__version__}, CUDA {torch.version.cuda}, {os.cpu_count()} CPU cores; "
            f"{tf32} (training's settings)"
        )
        return row("device", "cuda", detail)
    detail = f"no CUDA: CPU subset, torch {torch.__version__}, {torch.get_num_threads()} threads"
    return row("device", "cpu", detail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, help="folder for the logs and gpu-check.json (default: a temporary one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--started", type=float, help="when the check began (seconds since the epoch)")
    parser.add_argument("--budget", type=float, default=480, help="seconds the whole check may take")
    parser.add_argument("--repro-limit", type=float, default=300, help="seconds from the start the repro row may take")
    parser.add_argument("--no-tests", action="store_true", help="skip tests/integration/test_cuda.py")
    parser.add_argument("--repro-on-cpu", action="store_true", help="run the repro row without CUDA too")
    args = parser.parse_args()
    print(machine_line())
    if MISSING is not None:
        detail = f"{MISSING}; put its wheels in .whl/ (benchmarks/gpu_check.sh installs them)"
        print_table([row("device", "fail", f"the project does not import: {detail}")])
        return 1
    began = time.monotonic() - (time.time() - args.started if args.started else 0)
    deadline = began + args.budget
    device = resolve_device(args.device)
    config = PAPER if device.type == "cuda" else CPU_SUBSET
    logs = args.logs or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    logs.mkdir(parents=True, exist_ok=True)

    rows = [device_row(device)]
    repro = ReproRun(logs).start(device, force=args.repro_on_cpu)
    if not args.no_tests:
        rows += run_cuda_tests(logs, timeout=max(60.0, began + args.repro_limit - time.monotonic()))
    repro_result = repro.finish(until=began + args.repro_limit)  # the benchmarks run alone
    with tempfile.TemporaryDirectory(prefix="gpu-check-data-") as tmp:
        rows += training_rows(config, device, Path(tmp), deadline=deadline)
    rows += decode_rows(config, device, deadline=deadline)
    rows.append(repro_result)

    print_table(rows)
    seconds = time.monotonic() - began
    print(f"\n{len(rows)} checks in {seconds:.0f} s; logs in {logs}")
    (logs / "gpu-check.json").write_text(json.dumps({"seconds": seconds, "rows": rows}, indent=2) + "\n")
    return 1 if any(r["result"] == "fail" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
