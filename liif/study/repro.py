"""``liif repro --jobs N``: the study's variants N at a time, each job a plain ``dvc repro`` of DVC's own stages.

DVC runs independent stages side by side when several ``dvc repro`` processes share a
workspace: each holds the repository lock only while it reads or writes ``dvc.lock``
(``--wait-for-lock`` makes the others wait for those moments instead of failing). So:

1. the shared upstream stages (download, prepare, every configure) are brought up to
   date once, by one ``dvc repro``;
2. each variant's ``train@v`` and ``evaluate@v`` then run as one job,
   ``dvc --wait-for-lock repro --single-item train@v evaluate@v`` (``--single-item``: the
   upstream is up to date, and checking it again would take DVC's read-write lock on
   ``data/prepared`` that a running job holds); DVC writes ``dvc.lock`` itself;
3. the downstream stages (the report) run once every job has succeeded.

Each job gets a slot: one GPU (``CUDA_VISIBLE_DEVICES``) on CUDA, a share of the CPU cores
on CPU (``runtime.threads`` through ``LIIF_RUNTIME``, a per-process override of the runtime
section, which enters no identity). Output stays readable: one line per job event and a
status line, each job's full log under ``logs/repro/<variant>.log``. A job that fails does
not stop the others; at the end the command names the failed variants and their logs
and exits 1. Killed and rerun, every interrupted training resumes from its ``epoch-last.pth``.

Jobs start longest first (``estimated_work``), so the slots stay busy to the end instead of the last long
job running alone. Each job runs in its own process group: stopping the command (Ctrl-C, ``kill``) stops
every process of every job, its training included (``stop_group``).
"""

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from liif.config.params import RUNTIME_ENV
from liif.config.variants import config_hash
from liif.errors import UserError
from liif.files import SUMMARY, atomic_write

LOG_DIR = Path("logs/repro")
UPSTREAM = (
    "prepare*",
    "configure",
)  # every prepare@/prepare-folder@ and configure@ stage (dvc repro --glob), download too
DOWNSTREAM = ("report",)
EPOCH_LINE = re.compile(r"epoch (\d+): loss|epoch (\d+)/(\d+)")  # a finished epoch's line; tqdm's bar of one
STAGE_LINE = re.compile(r"^[a-z]+(@[\w.-]+)?: \S")  # a stage's own one-line reason (liif.errors.run_stage)
DVC_FAILED = "ERROR: failed to reproduce"
GRACE = 30.0  # seconds a job's processes get to stop after each signal


class ReproError(UserError):
    """A request the runner cannot carry out (unknown variant, bad --jobs); one line."""


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def plan_slots(jobs: str | int, *, gpus: int, cores: int, variants: int | None = None) -> list[dict]:
    """The environment of each job slot. ``auto``: one job per GPU; on CPU one job per core with one thread
    each (measured on 2 cores: two 1-thread trainings side by side give 1.43x the throughput of one 2-thread
    training, benchmarks/parallel_jobs.py). With N jobs on CPU the cores are shared out evenly.

    The count is capped, with a line saying so, before anything is allocated: at most one job per GPU (or per
    core on CPU) and one per variant to run, since more would only wait or share a device."""
    if jobs == "auto":
        count = gpus or cores
    else:
        text = str(jobs).strip()
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise ReproError(f"--jobs {text[:20]!r}: a number of jobs or auto")
        count = int(text)
        if count < 1:
            raise ReproError(f"--jobs {count}: at least 1")
    limits = {f"one job per {'GPU' if gpus else 'core'}": gpus or cores}
    if variants is not None:
        limits["one job per variant to run"] = max(1, variants)
    reason, cap = min(limits.items(), key=lambda item: item[1])
    if count > cap:
        if jobs != "auto":
            _say(f"liif repro: --jobs {count}: capped at {cap}, {reason}")
        count = cap
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(i % gpus)} for i in range(count)]
    threads = max(1, cores // count)
    return [{RUNTIME_ENV: json.dumps({"threads": threads}), "OMP_NUM_THREADS": str(threads)} for _ in range(count)]


def choose_variants(all_variants: list[str], names: list[str]) -> tuple[list[str], bool]:
    """The variants to run and whether the downstream stages run too: every variant and the report when no name
    is given; otherwise the named variants (``liif``, ``train@liif`` or ``evaluate@liif``), and the report only if
    ``report`` is named."""
    if not names:
        return list(all_variants), True
    chosen, downstream = [], False
    for name in names:
        if name in DOWNSTREAM:
            downstream = True
            continue
        variant = name.split("@", 1)[1] if name.startswith(("train@", "evaluate@")) else name
        if variant not in all_variants:
            raise ReproError(f"{name}: not a variant of params.yaml (variants: {', '.join(all_variants)})")
        if variant not in chosen:
            chosen.append(variant)
    return chosen, downstream


def estimated_work(config: dict, *, train_images: int, finished: bool = False) -> float:
    """A variant's training time in seconds of the default study's CPU run, to order the jobs (longest first).

    epochs x steps per epoch (training images x repeat / batch_size, rounded up) x batch_size x the cost of one
    sample: 1 ms, plus 3 us per encoder input pixel, plus 10 us per decoder query (LIIF, MetaSR) or 1 us per output
    pixel (the fixed-scale up-samplers' convolutions). The constants fit the per-variant train times of the
    default study (reports/README.md) to within +40 % (it overestimates): enough to order them. Bicubic, which
    learns nothing, and a finished training cost nothing."""
    t = config.get("train")
    if t is None or finished:
        return 0.0
    side = t["task"][0] if t.get("task") else t["inp_size"]
    per_sample = 1e-3 + 3e-6 * side * side
    if t["patches"] == "paired" or t.get("gt_resize"):  # whole patches decoded (the fixed-scale up-samplers)
        out = t.get("gt_resize") or side * int(t["scale_max"])
        per_sample += 1e-6 * out * out
    else:
        per_sample += 1e-5 * t["sample_q"]
    steps = math.ceil(max(1, train_images) * t["repeat"] / t["batch_size"])
    return t["epochs"] * steps * t["batch_size"] * per_sample


def variant_work(
    variant: str,
    *,
    configs: Path = Path("configs"),
    prepared: Path = Path("data/prepared"),
    models: Path = Path("models"),
) -> float:
    """``estimated_work`` of a variant from its ``configs/<v>.json`` (written by the upstream stages), the number of
    its prepared training images, and whether ``models/<v>/summary.json`` already holds this configuration's
    finished training. Unknown (no config yet): the longest, so it is not left for last."""
    try:
        config = json.loads((configs / f"{variant}.json").read_text())
    except (OSError, ValueError):
        return math.inf
    t = config.get("train") or {}
    folder = prepared / str(t.get("dataset")) / "train"
    folder = folder / str(t["task"][0]) if t.get("task") else folder / "HR"
    images = sum(1 for _ in folder.glob("*.png")) if folder.is_dir() else 1
    try:
        summary = json.loads((models / variant / SUMMARY).read_text())
        finished = summary.get("config_hash") == config_hash(config)
    except (OSError, ValueError, AttributeError):
        finished = False
    return estimated_work(config, train_images=images, finished=finished)


def longest_first(variants: list[str], work: dict[str, float]) -> list[str]:
    """The variants by decreasing estimated work; ties keep their params.yaml order."""
    return sorted(variants, key=lambda v: -work[v])


def job_command(variant: str) -> list[str]:
    return ["dvc", "--wait-for-lock", "repro", "--single-item", f"train@{variant}", f"evaluate@{variant}"]


@dataclass
class Job:
    variant: str
    log: Path
    process: subprocess.Popen | None = None
    slot: int = -1
    began: float = 0.0
    code: int | None = None
    last_line: str = field(default="")
    offset: int = 0  # how far the log has been read
    state: str = "starting"

    def progress(self) -> str:
        """The job's current epoch (or evaluating), from the log text written since the last call: a training's
        log grows by kilobytes of progress bars per epoch, so no fixed-size tail is sure to hold an epoch."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                new = f.read()
        except OSError:
            return self.state
        end = max(new.rfind(b"\n"), new.rfind(b"\r")) + 1  # complete lines only; the rest is read next time
        self.offset += end
        text = new[:end].decode(errors="replace")
        for match in EPOCH_LINE.finditer(text):
            done, current, total = match.groups()
            self.state = f"epoch {current}/{total}" if current else f"epoch {done} done"
        if "Running stage 'evaluate@" in text:
            self.state = "evaluating"
        return self.state


def _say(text: str):
    print(text, file=sys.stderr, flush=True)


def _last_words(log: Path, *, limit: int = 400) -> str:
    """Why a job failed: the stage's own one-line reason (``train@v: ...``, the last such line before DVC's
    ``ERROR: failed to reproduce``), else the last line before it, else DVC's error; long lines end at a word."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    failed = next((i for i, line in enumerate(lines) if line.startswith(DVC_FAILED)), len(lines))
    before = lines[:failed]
    own = [line for line in before if STAGE_LINE.match(line)]
    errors = [line for line in lines if line.startswith("ERROR")]
    line = (own or before or errors or ["(no output)"])[-1]
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " ..."
    return line


def clear_stale_locks(rwlock: Path = Path(".dvc/tmp/rwlock")) -> int:
    """Drop the entries of DVC's read-write lock held by processes that no longer exist (a killed run leaves them,
    and DVC then refuses every later repro); returns how many were dropped.

    The file is read and rewritten only while holding DVC's own guard of it (``rwlock.lock`` beside it, taken
    as ``dvc.rwlock`` takes it), and replaced atomically, so an entry a live DVC process adds meanwhile stays."""
    if not rwlock.is_file():
        return 0
    from dvc.lock import LockError, make_lock

    guard = make_lock(str(rwlock.with_name("rwlock.lock")), tmp_dir=str(rwlock.parent))
    try:
        with guard:
            return _drop_dead_entries(rwlock)
    except LockError:  # a live DVC process is editing it: its entries are not stale
        return 0


def _drop_dead_entries(rwlock: Path) -> int:
    try:
        table = json.loads(rwlock.read_text())
    except (OSError, ValueError):
        return 0
    dropped = 0
    for mode in ("read", "write"):
        for path, holders in list((table.get(mode) or {}).items()):
            entries = holders if isinstance(holders, list) else [holders]
            alive = [h for h in entries if _alive(h.get("pid"))]
            dropped += len(entries) - len(alive)
            if not alive:
                del table[mode][path]
            else:
                table[mode][path] = alive if isinstance(holders, list) else alive[0]
    if dropped:
        with atomic_write(rwlock, durable=False) as f:
            f.write(json.dumps(table).encode())
        _say(f"liif repro: cleared {dropped} stale DVC lock entries left by a killed run")
    return dropped


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) holds no lock
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stop_group(process: subprocess.Popen, *, grace: float = GRACE):
    """Stop a job started in its own process group, with every process in it (DVC ignores SIGINT while its stage
    runs, and a stage outliving DVC would train on unseen): SIGINT, then SIGTERM, then SIGKILL, each after
    ``grace`` seconds, until no process of the group is left."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        if _wait_group(process, timeout=grace if sig != signal.SIGKILL else 60.0):
            break
    process.wait()


def _wait_group(process: subprocess.Popen, *, timeout: float) -> bool:
    """Whether every process of ``process``'s group ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the group's leader: a zombie still counts as a member
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def run_group(command: list[str], **popen) -> int:
    """``subprocess.call`` in a new process group that is stopped with all its processes if this command is."""
    process = subprocess.Popen(command, start_new_session=True, **popen)
    try:
        return process.wait()
    except BaseException:
        stop_group(process)
        raise


def run_upstream(env: dict) -> int:
    _say(f"liif repro: bringing the shared stages up to date (dvc repro --glob {' '.join(UPSTREAM)})")
    return run_group(["dvc", "repro", "--glob", *UPSTREAM], env=env)


def run_jobs(
    variants: list[str], slots: list[dict], *, log_dir: Path = LOG_DIR, status_every: float = 30.0
) -> list[Job]:
    """Run each variant's job in a free slot until all have finished; returns the jobs with their exit codes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    waiting = [Job(variant=v, log=log_dir / f"{v}.log") for v in variants]
    running: list[Job] = []
    finished: list[Job] = []
    free = list(range(len(slots)))
    next_status = time.monotonic() + status_every
    try:
        while waiting or running:
            while waiting and free:
                job = waiting.pop(0)
                job.slot, job.began = free.pop(0), time.monotonic()
                env = {**os.environ, **slots[job.slot]}
                with open(job.log, "wb") as log:
                    job.process = subprocess.Popen(
                        job_command(job.variant), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                running.append(job)
                _say(f"  start  {job.variant} (slot {job.slot + 1}/{len(slots)}, log {job.log})")
            time.sleep(0.5)
            for job in list(running):
                job.code = job.process.poll()
                if job.code is None:
                    continue
                running.remove(job)
                finished.append(job)
                free.append(job.slot)
                seconds = time.monotonic() - job.began
                if job.code == 0:
                    _say(f"  done   {job.variant} in {seconds:.0f} s ({len(finished)}/{len(variants)})")
                else:
                    job.last_line = _last_words(job.log)
                    _say(f"  FAILED {job.variant} (exit {job.code}) after {seconds:.0f} s: {job.last_line}")
            if time.monotonic() >= next_status and running:
                next_status = time.monotonic() + status_every
                states = ", ".join(f"{j.variant} {j.progress()}" for j in running)
                _say(f"  [{len(finished)}/{len(variants)} done] running: {states}")
    except BaseException:  # Ctrl-C or a kill of this command: stop every job, trainings included, then re-raise
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second kill must not cut the stopping short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for job in running:
            _say(f"  stop   {job.variant}")
            with contextlib.suppress(ProcessLookupError):  # all groups at once; stop_group escalates one by one
                os.killpg(job.process.pid, signal.SIGINT)
        for job in running:
            stop_group(job.process)  # the next run resumes each training from its epoch-last.pth
        raise
    return finished


def check_workspace(root: Path = Path(".")):
    """The command runs DVC in the repository root: say so in one line when it cannot."""
    if not (root / "dvc.yaml").is_file():
        raise ReproError(f"no dvc.yaml in {root.resolve()}: run it from the repository root")
    if shutil.which("dvc") is None:
        raise ReproError("dvc is not on PATH: activate the project's venv (source .venv/bin/activate)")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def repro(all_variants: list[str], names: list[str], *, jobs: str | int = "auto") -> int:
    """The whole command: upstream once, the variants' jobs side by side, then the downstream stages."""
    signal.signal(signal.SIGTERM, _interrupt)  # a kill of this command stops its jobs too (see run_jobs)
    variants, downstream = choose_variants(all_variants, names)
    slots = plan_slots(jobs, gpus=gpu_count(), cores=cpu_cores(), variants=len(variants))
    began = time.monotonic()
    _say(f"liif repro: {len(variants)} variants, {len(slots)} at a time ({json.dumps(slots[0]) if slots else ''})")
    clear_stale_locks()
    if run_upstream(dict(os.environ)):
        _say("liif repro: the shared stages failed (see above); nothing else was run")
        return 1
    work = {v: variant_work(v) for v in variants}
    variants = longest_first(variants, work)
    _say(f"liif repro: longest first: {', '.join(variants)}")
    from liif.tracking import create_store  # once, before parallel jobs could race to create the MLflow store

    create_store()
    finished = run_jobs(variants, slots)
    failed = [job for job in finished if job.code]
    if failed:
        for job in failed:
            _say(f"liif repro: {job.variant} failed (exit {job.code}): {job.last_line}; full log: {job.log}")
        _say(f"liif repro: {len(failed)} of {len(variants)} variants failed; downstream stages not run")
        return 1
    if downstream:
        _say(f"liif repro: all variants done; dvc repro {' '.join(DOWNSTREAM)}")
        if run_group(["dvc", "repro", *DOWNSTREAM]):
            return 1
    _say(f"liif repro: finished in {time.monotonic() - began:.0f} s")
    return 0
