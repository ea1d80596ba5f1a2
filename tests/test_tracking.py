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


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A client of a real SQLite store (``DVC_ROOT``) shared by the tests below: making one takes seconds."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # MLflow sets it: the tests after these get it back
        yield mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        mlflow.set_tracking_uri(None)


def test_the_experiment_opens_as_training_runs_not_as_a_genai_project(client):
    from liif.tracking import Tracker

    kind = "mlflow.experimentKind"  # MLflow 3's mark of a training (not GenAI) experiment
    client.create_experiment("made-before-the-tag")
    client.create_experiment("kind-chosen-in-the-ui", tags={kind: "genai_development"})
    for name in ("new", "made-before-the-tag", "kind-chosen-in-the-ui"):
        tracker = Tracker(enabled=True, experiment=name, run_name="liif")
        assert tracker.enabled
        tracker.end()
    # MLflow 3.17's UI opens GenAI views unless told otherwise, whatever the tag: the report's link tells it
    experiment_id = client.get_experiment_by_name("kind-chosen-in-the-ui").experiment_id
    assert tracker.experiment_link() == f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    tags = {name: client.get_experiment_by_name(name).tags.get(kind) for name in ("new", "made-before-the-tag")}
    assert tags == {"new": "custom_model_development", "made-before-the-tag": "custom_model_development"}
    assert client.get_experiment_by_name("kind-chosen-in-the-ui").tags[kind] == "genai_development"


@pytest.fixture(scope="module")
def variants(client):
    """Runs a, b (in another experiment) and c; a report run has adopted a. Returns their run ids."""
    from liif.tracking import Tracker

    ids = {}
    for name, experiment, seconds in (("a", "liif-repro", 1.5), ("b", "other", 2.5), ("c", "liif-repro", 3.5)):
        tracker = Tracker(enabled=True, experiment=experiment, run_name=name)
        tracker.log_metrics({"eval_seconds": seconds})
        tracker.end()
        ids[name] = tracker.run_id
    report = Tracker(enabled=True, experiment="liif-repro", run_name="report")
    report.adopt([ids["a"]])
    report.end()
    return ids


def test_variant_runs_are_found_in_every_experiment_and_are_empty_when_they_cannot_be(variants, monkeypatch):
    import mlflow

    from liif.tracking import variant_runs

    runs = variant_runs([variants["a"], variants["b"]], enabled=True)
    assert sorted(runs["tags.variant"]) == ["a", "b"]
    assert variant_runs([variants["a"]], enabled=False).empty
    assert variant_runs([], enabled=True).empty

    def broken(**kwargs):
        raise mlflow.exceptions.MlflowException("the store cannot be read")

    monkeypatch.setattr(mlflow, "search_runs", broken)
    assert variant_runs([variants["a"]], enabled=True).empty


def test_eval_times_are_per_variant(variants):
    import pandas as pd

    from liif.tracking import eval_times, variant_runs

    assert eval_times(variant_runs(list(variants.values()), enabled=True)) == {"a": 1.5, "b": 2.5, "c": 3.5}
    assert eval_times(pd.DataFrame()) == {}


def test_orphans_are_the_runs_no_report_adopted(variants):
    import pandas as pd

    from liif.tracking import orphans, variant_runs

    assert set(orphans(variant_runs(list(variants.values()), enabled=True))) == {variants["b"], variants["c"]}
    assert orphans(pd.DataFrame()) == []
