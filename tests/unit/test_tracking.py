"""MLflow tracking never breaks a stage, and says so in one line when it cannot work."""

import signal
import sqlite3

import pytest
from conftest import CPU_RUNTIME


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


def test_create_store_makes_the_store_once_or_nothing_when_tracking_is_off(tmp_path, monkeypatch):
    from liif.tracking import create_store

    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert create_store({"enabled": False, "experiment": "liif-repro"}) is False
    assert not (tmp_path / "mlflow.db").exists()
    assert create_store({"enabled": True, "experiment": "liif-repro"}) is True
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        names = {name for (name,) in db.execute("SELECT name FROM experiments")}
    assert names == {"Default", "liif-repro"} and (tmp_path / "mlflow.db.lock").is_file()


def test_liif_repro_creates_the_store_before_its_parallel_jobs(tmp_path, monkeypatch):
    """The store is made once, from params.yaml's runtime.tracking, before any two jobs could race to make it."""
    import yaml

    from liif.study import repro

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    params = {"runtime": {**CPU_RUNTIME, "tracking": {"enabled": True, "experiment": "made-first"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    seen = []

    def jobs(variants, slots):
        seen.append((tmp_path / "mlflow.db").is_file())
        return []

    for name, value in {
        "choose_variants": lambda all_variants, names: (["liif", "metasr"], False),
        "plan_slots": lambda *a, **k: [{}, {}],
        "gpu_count": lambda: 0,
        "cpu_cores": lambda: 2,
        "clear_stale_locks": lambda: None,
        "run_upstream": lambda env: 0,
        "variant_work": lambda variant: 1,
        "longest_first": lambda variants, work: variants,
        "run_jobs": jobs,
    }.items():
        monkeypatch.setattr(repro, name, value)
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    assert repro.repro(["liif", "metasr"], [], jobs=2) == 0
    assert seen == [True]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert ("made-first",) in db.execute("SELECT name FROM experiments").fetchall()
