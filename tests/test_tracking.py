"""MLflow tracking never breaks a stage, and says so in one line when it cannot work."""

import sqlite3
import subprocess
import sys

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
