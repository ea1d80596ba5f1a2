"""A folder of your own photographs is a dataset (``data.folders``): trained on, validated on, scored on, and in
the size-varied task, by the real ``dvc repro``; its files are DVC's dependency, so touching one image makes
``dvc status`` show that folder's prepare stage and nothing else."""

import json
import shutil

import numpy as np
import pytest
from conftest import needs_dvc, sh, study_copy
from PIL import Image

from liif.config.params import dump_yaml, read_yaml
from liif.sources.sample import export_sample_suite

pytestmark = [pytest.mark.integration, needs_dvc]


def _photo_folder(folder, tmp_path):
    """Eight real photographs of the sample suite at 256 px in the formats people keep (JPEG, greyscale PNG,
    16-bit PNG, RGBA PNG, a JPEG rotated by its EXIF tag, WebP, TIFF), plus one too small to train on."""
    folder.mkdir()
    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "brick", "grass", "moon"]
    pngs = export_sample_suite(names, tmp_path / "suite")
    images = {p.stem: Image.open(p).resize((256, 256), Image.Resampling.BICUBIC) for p in pngs}
    images["astronaut"].save(folder / "astronaut.jpg", quality=92)
    images["camera"].convert("L").save(folder / "camera.png")
    grey16 = (np.asarray(images["coins"].convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "coins16.png")
    images["coffee"].convert("RGBA").save(folder / "coffee.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    images["chelsea"].save(folder / "chelsea.jpg", exif=exif, quality=92)
    images["rocket"].save(folder / "rocket.webp", quality=90)
    images["brick"].save(folder / "brick.tif")
    images["grass"].save(folder / "grass.png")
    images["moon"].resize((100, 100)).save(folder / "small.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _tile_folder(folder, tmp_path):
    """Split sub-folders, one photograph each: the size-varied task cuts them into 128 px tiles."""
    for split, name in (("train", "astronaut"), ("val", "coins"), ("test", "chelsea")):
        (folder / split).mkdir(parents=True)
        [png] = export_sample_suite([name], tmp_path / "suite")
        shutil.copy(png, folder / split / png.name)
    return folder


def test_a_folder_of_photographs_trains_validates_and_scores(tmp_path):
    photos = _photo_folder(tmp_path / "photos", tmp_path)
    tiles = _tile_folder(tmp_path / "tiles", tmp_path)
    repo = study_copy(tmp_path / "repo", "profiles/tiny.yaml")
    params = read_yaml(repo / "params.yaml")
    params["data"]["folders"] = {
        "photos": {"path": str(photos), "split": {"val": 1, "test": 2}, "seed": 3, "min_side": 192},
        "tiles": {"path": str(tiles), "sizes": [64, 32, 16], "tile": 128},
    }
    params["eval"]["datasets"] = {"photos": {"protocol": "div2k", "scales": [2, 3]}}
    params["variants"] = {
        "liif": {"role": "base", "train": {"dataset": "photos"}},
        "bicubic": {"role": "bicubic", "model": {"name": "bicubic"}},
        "sized-liif-16-64": {"role": "size-varied", "train": {"dataset": "tiles", "task": [16, 64], "epochs": 1}},
    }
    (repo / "params.yaml").write_text(dump_yaml(params))
    sh("git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "folders", cwd=repo)
    sh("dvc", "repro", cwd=repo)

    record = json.loads((repo / "data/prepared/photos/split.json").read_text())
    usable = sorted(p.name for p in photos.iterdir() if p.suffix != ".txt" and p.name != "small.png")
    assert record["from"] == "drawn" and record["seed"] == 3 and record["skipped"] == ["small.png"]
    assert (len(record["val"]), len(record["test"])) == (1, 2)
    assert sorted(record["train"] + record["val"] + record["test"]) == usable
    for split in ("train", "val", "test"):  # every format decoded to 8-bit RGB, EXIF orientation applied
        for name in record[split]:
            hr = Image.open(repo / f"data/prepared/photos/{split}/HR/{name.rsplit('.', 1)[0]}.png")
            assert hr.mode == "RGB" and hr.size == (256, 256)
    tiles_record = json.loads((repo / "data/prepared/tiles/split.json").read_text())
    assert tiles_record == {
        "from": "sub-folders",
        "train": ["astronaut.png"],
        "val": ["coins.png"],
        "test": ["chelsea.png"],
    }
    assert len(list((repo / "data/prepared/tiles/train/64").iterdir())) == 16  # 512 px in 128 px tiles

    scores = json.loads((repo / "metrics/eval/liif.json").read_text())["psnr"]["photos"]
    assert set(scores) == {"x2", "x3"} and all(10 < v < 60 for v in scores.values())
    assert json.loads((repo / "metrics/eval/sized-liif-16-64.json").read_text())["psnr"]
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=repo)

    def stale() -> set:
        return set(json.loads(sh("dvc", "status", "--json", cwd=repo)))

    target = photos / record["train"][0]
    original = target.read_bytes()
    with Image.open(target) as im:
        changed = im.copy()
    changed.putpixel((0, 0), (0, 0, 0) if changed.mode == "RGB" else 0)
    changed.save(target, format=Image.open(target).format)
    assert stale() == {"prepare-folder@photos"}  # changed in place
    target.write_bytes(original)
    assert stale() == set()
    shutil.copy(photos / "grass.png", photos / "grass-copy.png")
    assert stale() == {"prepare-folder@photos"}  # added
    (photos / "grass-copy.png").unlink()
    assert stale() == set()
    (photos / "brick.tif").unlink()
    assert stale() == {"prepare-folder@photos"}  # deleted
