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
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from liif.params import RUNTIME_ENV

LOG_DIR = Path("logs/repro")
UPSTREAM = ("prepare", "configure")  # dvc repro of these groups also brings download up to date
DOWNSTREAM = ("report",)
EPOCH_LINE = re.compile(r"epoch (\d+): loss")


class ReproError(ValueError):
    """A request the runner cannot carry out (unknown variant, bad --jobs); one line."""


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def plan_slots(jobs: str | int, *, gpus: int, cores: int) -> list[dict]:
    """The environment of each job slot. ``auto``: one job per GPU; on CPU one job per core with one thread
    each (measured on 2 cores: two 1-thread trainings side by side give 1.43x the throughput of one 2-thread
    training, benchmarks/parallel_jobs.py). With N jobs on CPU the cores are shared out evenly."""
    if jobs == "auto":
        count = gpus or cores
    else:
        try:
            count = int(jobs)
        except ValueError:
            raise ReproError(f"--jobs {jobs!r}: a number of jobs or auto") from None
        if count < 1:
            raise ReproError(f"--jobs {count}: at least 1")
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

    def progress(self) -> str:
        """The job's latest epoch, read from its log."""
        try:
            tail = self.log.read_bytes()[-4096:].decode(errors="replace")
        except OSError:
            return "starting"
        epochs = EPOCH_LINE.findall(tail)
        if "Running stage 'evaluate@" in tail:
            return "evaluating"
        return f"epoch {epochs[-1]}" if epochs else "starting"


def _say(text: str):
    print(text, file=sys.stderr, flush=True)


def _last_words(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.is_file() else []
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["(no output)"])[-1][:200]


def clear_stale_locks(rwlock: Path = Path(".dvc/tmp/rwlock")) -> int:
    """Drop the entries of DVC's read-write lock held by processes that no longer exist (a killed run leaves them,
    and DVC then refuses every later repro); returns how many were dropped."""
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
        rwlock.write_text(json.dumps(table))
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


def run_upstream(env: dict) -> int:
    _say(f"liif repro: bringing the shared stages up to date (dvc repro {' '.join(UPSTREAM)})")
    return subprocess.call(["dvc", "repro", *UPSTREAM], env=env)


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
                        job_command(job.variant), stdout=log, stderr=subprocess.STDOUT, env=env
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
    except BaseException:  # Ctrl-C or a kill of this command: stop every job the way DVC expects, then re-raise
        for job in running:
            job.process.send_signal(signal.SIGINT)  # DVC stops its stage; the next run resumes the training
        for job in running:
            try:
                job.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                job.process.kill()
        raise
    return finished


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def repro(all_variants: list[str], names: list[str], *, jobs: str | int = "auto") -> int:
    """The whole command: upstream once, the variants' jobs side by side, then the downstream stages."""
    signal.signal(signal.SIGTERM, _interrupt)  # a kill of this command stops its jobs too (see run_jobs)
    variants, downstream = choose_variants(all_variants, names)
    slots = plan_slots(jobs, gpus=gpu_count(), cores=cpu_cores())
    slots = slots[: max(1, len(variants))]
    began = time.monotonic()
    _say(f"liif repro: {len(variants)} variants, {len(slots)} at a time ({json.dumps(slots[0]) if slots else ''})")
    clear_stale_locks()
    if run_upstream(dict(os.environ)):
        _say("liif repro: the shared stages failed (see above); nothing else was run")
        return 1
    finished = run_jobs(variants, slots)
    failed = [job for job in finished if job.code]
    if failed:
        for job in failed:
            _say(f"liif repro: {job.variant} failed (exit {job.code}): {job.last_line}; full log: {job.log}")
        _say(f"liif repro: {len(failed)} of {len(variants)} variants failed; downstream stages not run")
        return 1
    if downstream:
        _say(f"liif repro: all variants done; dvc repro {' '.join(DOWNSTREAM)}")
        if subprocess.call(["dvc", "repro", *DOWNSTREAM]):
            return 1
    _say(f"liif repro: finished in {time.monotonic() - began:.0f} s")
    return 0
