"""Source ``folder``: splits from sub-folders or drawn with a seed, small images left out by name, mistakes one line."""

import copy
import json

import numpy as np
import pytest
from conftest import study_params
from PIL import Image

from liif.config.params import ParamsError
from liif.config.schema import check_sections, datasets_of
from liif.data.layout import PreparedData
from liif.data.prepare import prepare_datasets
from liif.sources.base import SourceError
from liif.sources.folder import Folder


def _images(folder, names, side=64):
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[0:side, 0:side]
    for i, name in enumerate(names):
        rgb = np.stack([(rows * (i + 1)) % 256, (cols + 9 * i) % 256, (rows + cols) % 256], axis=-1)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / name)
    return folder


def test_a_drawn_split_repeats_for_its_seed_and_barely_moves_when_an_image_is_added(tmp_path):
    folder = _images(tmp_path / "photos", [f"p{i:02d}.png" for i in range(30)])
    splits, record = Folder(path=str(folder), split={"val": 3, "test": 5}, seed=1).splits()
    again, _ = Folder(path=str(folder), split={"val": 3, "test": 5}, seed=1).splits()
    other, _ = Folder(path=str(folder), split={"val": 3, "test": 5}, seed=2).splits()
    assert splits == again and splits != other
    assert [len(splits[s]) for s in ("train", "val", "test")] == [22, 3, 5]
    assert record == {"from": "drawn", "seed": 1, **{s: [p.name for p in splits[s]] for s in ("train", "val", "test")}}
    _images(folder, ["p99.png"])
    grown, _ = Folder(path=str(folder), split={"val": 3, "test": 5}, seed=1).splits()
    moved = sum(len(set(grown[s]) - set(splits[s])) for s in ("val", "test"))
    assert moved <= 2  # the new image takes at most one place and pushes at most one image on


def test_default_split_holds_out_a_tenth_each_and_sub_folders_win(tmp_path):
    folder = _images(tmp_path / "flat", [f"p{i:02d}.jpg" for i in range(20)])
    splits, _ = Folder(path=str(folder)).splits()
    assert [len(splits[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    nested = tmp_path / "nested"
    _images(nested / "train", ["a.png", "b.png"])
    _images(nested / "test", ["c.png"])
    splits, record = Folder(path=str(nested)).splits()
    assert {s: [p.name for p in v] for s, v in splits.items()} == {"train": ["a.png", "b.png"], "test": ["c.png"]}
    assert record["from"] == "sub-folders"
    with pytest.raises(SourceError, match="has split sub-folders .*remove it"):
        Folder(path=str(nested), split={"val": 1}).splits()


def test_small_images_are_named_and_left_out_and_impossible_requests_are_one_line(tmp_path, capsys):
    folder = _images(tmp_path / "photos", ["a.png", "b.png", "c.png", "d.png"])
    _images(folder, ["tiny.png"], side=20)
    splits, record = Folder(path=str(folder), split={"val": 1, "test": 1}, min_side=32).splits()
    assert record["skipped"] == ["tiny.png"] and all(p.name != "tiny.png" for s in splits.values() for p in s)
    assert "tiny.png: 20x20, below min_side 32; left out" in capsys.readouterr().err
    with pytest.raises(SourceError, match="4 usable images, 2 for val and 2 for test leave none to train on"):
        Folder(path=str(folder), split={"val": 2, "test": 2}, min_side=32).splits()
    with pytest.raises(SourceError, match="does not exist; data.folders names a folder of images"):
        Folder(path=str(tmp_path / "nowhere")).splits()


def test_folders_are_datasets_of_the_data_section_checked_by_the_folder_source(tmp_path):
    params = study_params()
    params["data"]["folders"] = {"photos": {"path": "/data/photos", "split": {"val": 2, "test": 3}}}
    data = check_sections(params, sections=("data",))["data"]
    assert datasets_of(data)["photos"] == {"source": "folder", "path": "/data/photos", "split": {"val": 2, "test": 3}}
    for folders, message in [
        ({"photos": {"path": "~/photos"}}, "data.folders.photos.path: '~/photos': DVC does not expand ~"),
        ({"photos": {"path": "/p", "split": {"train": 2}}}, "data.folders.photos.split"),
        ({"photos": {"path": "/p", "tain": 2}}, "data.folders.photos.tain: unknown key"),
        ({"photos": {}}, "data.folders.photos.path: Field required"),
        ({next(iter(params["data"]["datasets"])): {"path": "/p"}}, "also a dataset of data.datasets; rename one"),
    ]:
        bad = copy.deepcopy(params)
        bad["data"]["folders"] = folders
        with pytest.raises(ParamsError, match=message):
            check_sections(bad, sections=("data",))


def test_a_folder_named_under_data_datasets_is_moved_by_one_line():
    params = study_params()
    params["data"]["datasets"]["photos"] = {"source": "folder", "path": "/data/photos"}
    with pytest.raises(ParamsError, match="data.datasets.photos.source: a folder of your own images goes under "):
        check_sections(params, sections=("data",))


def test_a_folder_dataset_is_prepared_in_place_with_its_split_recorded(tmp_path):
    folder = _images(tmp_path / "photos", [f"p{i}.png" for i in range(6)])
    grey = Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)  # 16-bit greyscale
    grey.save(folder / "grey16.png")
    data = {
        "datasets": {},
        "folders": {"mine": {"path": str(folder), "split": {"val": 1, "test": 2}}},
        "lr_scales": [2],
    }
    prepared = PreparedData(tmp_path / "prepared")
    [(name, manifest)] = list(prepare_datasets(data, raw_root=tmp_path / "raw", prepared=prepared))
    record = json.loads(prepared.split_record("mine").read_text())
    assert name == "mine" and manifest.is_file() and not (tmp_path / "raw").exists()  # read in place
    assert sorted(record["train"] + record["val"] + record["test"]) == sorted(p.name for p in folder.iterdir())
    for split in ("train", "val", "test"):
        for image in record[split]:
            hr = Image.open(prepared.hr("mine", split) / image)
            assert hr.mode == "RGB" and (prepared.lr("mine", split, 2) / image.replace(".png", "x2.png")).is_file()
    with pytest.raises(ParamsError, match="no dataset 'theirs' in data.datasets or data.folders"):
        list(prepare_datasets(data, raw_root=tmp_path / "raw", prepared=prepared, names=["theirs"]))
