"""params.yaml as a file: values read as DVC reads them (YAML 1.2), a broken file or a date refused in one line
naming the file and key, written params read back the same, runtime overrides and each dataset's keys checked."""

import math

import pytest
from conftest import study_params

from liif.config.params import ParamsError, dump_yaml, load_params, read_yaml
from liif.config.schema import runtime_settings


@pytest.mark.parametrize(
    "text, value",
    [
        ("1e-05", 1e-05),  # what `dvc exp run -S train.lr=1e-5` writes
        ("1.0e-5", 1e-05),
        ("1e3", 1000.0),
        ("010", 10),  # YAML 1.1 read eight
        ("off", "off"),  # YAML 1.1 read False
        ("yes", "yes"),
        ("true", True),
        (".inf", math.inf),
    ],
)
def test_values_read_as_dvc_reads_them(tmp_path, text, value):
    (tmp_path / "p.yaml").write_text(f"train:\n  x: {text}\n")
    read = read_yaml(tmp_path / "p.yaml")["train"]["x"]
    assert read == value and type(read) is type(value)


def test_a_duplicate_key_is_one_line_naming_the_file_line_and_key(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.001\n  epochs: 3\n  lr: 0.01\n")
    with pytest.raises(ParamsError, match=r'params.yaml line 4: found duplicate key "lr"') as caught:
        load_params(tmp_path / "params.yaml")
    assert "\n" not in str(caught.value)


def test_a_date_is_refused_naming_its_key(tmp_path):
    (tmp_path / "params.yaml").write_text("report:\n  profile: 2024-01-01\n")
    with pytest.raises(ParamsError, match="params.yaml report.profile: 2024-01-01 reads as a date; quote it"):
        load_params(tmp_path / "params.yaml")


def test_written_params_read_back_the_same_by_yaml_1_1_and_1_2(tmp_path):
    import yaml

    params = {**study_params(), "report": {"profile": "1e-05", "figures": True, "caveat": "off"}}
    params["train"] = {**params["train"], "lr": 1e-05}
    (tmp_path / "params.yaml").write_text(dump_yaml(params))
    assert load_params(tmp_path / "params.yaml") == params
    assert list(load_params(tmp_path / "params.yaml")["variants"]) == list(params["variants"])  # order kept
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["train"]["lr"] == 1e-05


@pytest.mark.parametrize("value", ["1e20", "100000000000000000000", '"4"', "2.5"])
def test_a_runtime_override_names_liif_runtime(value, monkeypatch):
    monkeypatch.setenv("LIIF_RUNTIME", f'{{"threads": {value}}}')
    with pytest.raises(ParamsError, match=r"^LIIF_RUNTIME threads: "):
        runtime_settings(study_params())
    monkeypatch.setenv("LIIF_RUNTIME", '{"threads": 1}')
    assert runtime_settings(study_params())["threads"] == 1


@pytest.mark.parametrize("value", ["1e9", "-1", '"many"', "true", "2.0"])
def test_workers_out_of_range_says_what_it_accepts(value, monkeypatch):
    monkeypatch.setenv("LIIF_RUNTIME", f'{{"workers": {value}}}')
    with pytest.raises(ParamsError) as refused:
        runtime_settings(study_params())
    assert str(refused.value).endswith(": auto or a whole number of loader processes from 0 to 4096"), refused.value
    assert "literal" not in str(refused.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"source": "sample", "trian": ["camera"]}, "data.datasets.photos.trian: unknown key; did you mean train?"),
        ({"source": "official", "path": "x"}, "data.datasets.photos.path: unknown key for source official (a key of"),
        ({"source": "official", "crop": 96}, "data.datasets.photos.crop: unknown key for source official (a key of"),
        (
            {"source": "official", "lr_scale": [2]},
            "data.datasets.photos.lr_scale: unknown key; did you mean lr_scales?",
        ),
        ({"source": "mirror"}, "data.datasets.photos.mirror: Field required"),
        ({"source": "local", "path": "x", "split": "tset"}, "data.datasets.photos.split: 'tset': Input should be"),
        ({"source": "local", "path": "x", "val_fraction": 1}, "data.datasets.photos.val_fraction: 1: Input should be"),
        ({"source": "sample", "sizes": [0]}, "data.datasets.photos.sizes.0: 0: Input should be greater than or equal"),
        ({"source": "ftp"}, "data.datasets.photos.source: 'ftp' is not a dataset source of liif/sources; valid: "),
        ({"train": ["camera"]}, "data.datasets.photos.source: missing; valid: local, mirror, official, sample"),
    ],
)
def test_a_dataset_takes_the_keys_its_source_reads(spec, message):
    """Each data.datasets entry is checked by the schema built from its source's signature (liif.sources)."""
    from liif.config.schema import check_sections

    with pytest.raises(ParamsError) as refused:
        check_sections({"data": {"datasets": {"photos": spec}}}, sections=("data",))
    assert str(refused.value).startswith(f"params.yaml {message}"), str(refused.value)
