"""MLflow tracking never breaks a stage, and says so in one line when it cannot work."""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

STAGE = """
from liif.tracking import Tracker
t = Tracker(enabled=True, experiment='liif-repro', run_name='liif')
t.log_metrics({'psnr': 30.0})
t.end()
print('stage went on', t.enabled)
"""


def run_stage(cwd):
    return subprocess.run(
        [sys.executable, "-c", STAGE],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
        timeout=120,
    )


def refuse_writes(database):
    """A store that reads but cannot write, like a read-only database file (chmod does not stop root)."""
    with sqlite3.connect(database) as db:
        for table in ("runs", "metrics", "latest_metrics", "params", "tags", "experiments"):
            db.execute(
                f"CREATE TRIGGER no_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
            )


@pytest.mark.parametrize("store", ["read-only", "not-a-file"])
def test_an_unusable_store_costs_one_line_not_a_traceback(tmp_path, store):
    if store == "read-only":
        assert run_stage(tmp_path).stdout.strip() == "stage went on True"  # a working store first
        refuse_writes(tmp_path / "mlflow.db")
    else:
        (tmp_path / "mlflow.db").mkdir()
    proc = run_stage(tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "stage went on False"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: MLflow tracking disabled:"), proc.stderr


HOLD = """
import sys, time
from liif.tracking import Tracker
t = Tracker(enabled=True, experiment='liif-repro', run_name='report', stage='report')
if 'on-signal' in sys.argv:
    t.end_on_signal()
print(t.run_id, flush=True)
time.sleep(120)
"""


@pytest.mark.integration
def test_an_interrupted_stage_ends_its_run_killed_not_finished(tmp_path):
    """SIGINT (Ctrl-C, or liif repro stopping its jobs) raises KeyboardInterrupt: the stage exits through Python,
    where MLflow's own exit hook would end the open run as FINISHED."""
    proc, run_id = hold_a_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0 and "KeyboardInterrupt" in proc.stderr.read()
    assert run_status(tmp_path / "mlflow.db", run_id) == "KILLED"
    assert not (tmp_path / "mlartifacts/.open-runs" / f"{run_id}.json").exists()


def hold_a_run(cwd, *args):
    """A stage process holding its MLflow run open, and the run's id."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    return proc, proc.stdout.readline().strip()


def run_status(database, run_id):
    with sqlite3.connect(database) as db:
        return db.execute("SELECT status FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()[0]


@pytest.mark.integration
def test_a_killed_stage_leaves_no_run_running(tmp_path):
    """SIGKILL gives a stage no chance to end its run: the next stage that starts closes it as KILLED."""
    proc, run_id = hold_a_run(tmp_path)
    assert run_id and (tmp_path / "mlartifacts/.open-runs" / f"{run_id}.json").is_file()
    proc.kill()
    proc.wait(timeout=30)
    assert run_status(tmp_path / "mlflow.db", run_id) == "RUNNING"
    assert run_stage(tmp_path).stdout.strip() == "stage went on True"
    assert run_status(tmp_path / "mlflow.db", run_id) == "KILLED"
    assert not list((tmp_path / "mlartifacts/.open-runs").iterdir())  # the new stage ended its own run too


@pytest.mark.integration
def test_a_terminated_report_ends_its_run_killed_at_once(tmp_path):
    proc, run_id = hold_a_run(tmp_path, "on-signal")
    proc.terminate()
    assert proc.wait(timeout=60) == -signal.SIGTERM, proc.stderr.read()
    assert run_status(tmp_path / "mlflow.db", run_id) == "KILLED"
    assert not (tmp_path / "mlartifacts/.open-runs" / f"{run_id}.json").exists()


def test_a_live_stage_keeps_its_run_open(tmp_path, monkeypatch):
    """Only runs of processes that are gone count as stale: another stage running beside this one is not."""
    from liif.tracking import mark_open, stale_runs

    mark_open(tmp_path, "mine", "report")
    assert stale_runs(tmp_path) == []  # this very process
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    marker = tmp_path / "mlartifacts/.open-runs/gone.json"
    marker.write_text(json.dumps({"run_id": "gone", "pid": int(gone.stdout), "host": socket.gethostname()}))
    (tmp_path / "mlartifacts/.open-runs/other-host.json").write_text(
        json.dumps({"run_id": "other-host", "pid": 1, "host": "not-" + socket.gethostname()})
    )
    assert stale_runs(tmp_path) == ["gone"] and not marker.exists()


RACE = """
import sys, time
from pathlib import Path
from liif.tracking import Tracker
Path(sys.argv[1]).touch()
while not Path('go').exists():
    time.sleep(0.01)
t = Tracker(enabled=True, experiment='liif-repro', run_name=sys.argv[1])
t.log_metrics({'psnr': 30.0})
t.end()
print('tracked', t.enabled)
"""


@pytest.mark.integration
def test_stages_creating_a_fresh_store_at_once_all_track(tmp_path):
    """Four stages open a store that does not exist yet at the same moment: one creates it, all track."""
    names = [f"stage{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, name],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        for name in names
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / name).exists() for name in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = [proc.communicate(timeout=180) for proc in procs]
    for out, err in results:
        assert out.strip() == "tracked True" and "tracking disabled" not in err, err
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        statuses = db.execute("SELECT status FROM runs").fetchall()
    assert statuses == [("FINISHED",)] * 4


def half_migrated(database, *, leftover: str = "_alembic_tmp_tags"):
    """The store a migration killed halfway leaves: the schema at an old revision, Alembic's scratch table left."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base

    uri = f"sqlite:///{database}"
    engine = sqlalchemy.create_engine(uri)
    Base.metadata.create_all(engine)
    config = _get_alembic_config(uri)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "4465047574b1")  # the revision before tags are rebuilt with a longer value
    engine.dispose()
    with sqlite3.connect(database) as db:
        db.execute(f"CREATE TABLE {leftover} (key VARCHAR(250))")


@pytest.mark.integration
def test_a_half_created_store_is_repaired(tmp_path):
    """Before, every later stage lost tracking to `table _alembic_tmp_tags already exists` until the store was
    deleted; a store that tracked nothing yet is now built again under the lock."""
    half_migrated(tmp_path / "mlflow.db")
    proc = run_stage(tmp_path)
    assert proc.stdout.strip() == "stage went on True" and "tracking disabled" not in proc.stderr, proc.stderr
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert db.execute("SELECT status FROM runs").fetchall() == [("FINISHED",)]
    assert not {t for t in tables if t.startswith("_alembic_tmp_")}


@pytest.mark.integration
def test_a_store_with_runs_that_cannot_be_migrated_is_one_line(tmp_path):
    """Runs are never thrown away to repair a store: the stage goes on untracked, naming the file and the fix."""
    assert run_stage(tmp_path).stdout.strip() == "stage went on True"
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '4465047574b1'")  # a migration that died halfway
        db.execute("CREATE TABLE _alembic_tmp_tags (key VARCHAR(250))")
    for _ in range(2):  # and the next stage is told the same, not a new error
        proc = run_stage(tmp_path)
        assert proc.returncode == 0 and proc.stdout.strip() == "stage went on False"
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"warning: MLflow tracking disabled: StoreError: {tmp_path / 'mlflow.db'}: ")
        assert "`mlflow db upgrade sqlite:///" in lines[0] and "move it away to start a new one" in lines[0]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


TRAINING = """
import json, time
from pathlib import Path
from liif.train import track
from liif.train.distributed import Ranks

out = Path('run')
out.mkdir()
(out / 'epoch-last.pth').write_bytes(b'weights')
Path('manifest.tsv').write_text('path\\tbytes\\tmd5\\n')
config = {'variant': 'liif', 'model': {'name': 'liif', 'args': {}}, 'train': {'epochs': 1}}
tracking = {'enabled': True, 'experiment': 'liif-repro', 'system_metrics': 0.2}
mine = [{'name': 'mine', 'split': 'train', 'path': 'manifest.tsv', 'digest': '0123456789abcdef'}]
tracker = track.start_tracking(config, out_dir=out, tracking=tracking, run_id=None, ranks=Ranks(), datasets=mine)
began = time.time()
while time.time() < began + 1.5:  # an epoch of work, sampled by MLflow's system metrics
    sum(i * i for i in range(10000))
record = {'epoch': 1, 'loss': 0.1, 'val_psnr': 20.0, 'lr': 1e-3, 'seconds': 1.5}
track.log_epoch(tracker, record, variant='liif')
model_id = track.end_tracking(tracker, out_dir=out, config=config, history=[record])
print(json.dumps({'run': tracker.run_id, 'model': model_id}))
"""


def test_a_training_run_records_its_cost_its_data_and_its_model(tmp_path):
    """System metrics at runtime.tracking.system_metrics, the process's own peak memory and epoch time, the datasets
    read (name, split, digest), and the checkpoint as a logged model with the run's time and memory."""
    done = subprocess.run([sys.executable, "-c", TRAINING], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = mlflow.get_run(ids["run"])
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(run.data.metrics)
    assert run.data.metrics["peak_rss_mb"] > 20 and run.data.metrics["epoch_seconds"] == 1.5
    [read] = run.inputs.dataset_inputs
    assert (read.dataset.name, read.dataset.digest, {t.key: t.value for t in read.tags}["split"]) == (
        "mine",
        "0123456789abcdef",
        "train",
    )
    model = mlflow.get_logged_model(ids["model"])
    assert model.source_run_id == ids["run"] and model.name == "liif" and model.status == "READY"
    assert {m.key: m.value for m in model.metrics}["train_seconds"] == 1.5
    assert [a.path for a in mlflow.MlflowClient().list_logged_model_artifacts(ids["model"])] == ["epoch-last.pth"]
