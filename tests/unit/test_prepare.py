"""Preparing data: RGB HR images with MATLAB-bicubic LR sets and a manifest, the offline sample suite and its
squares, one decoder for 16-bit images, and no write or delete outside a dataset's folder."""

import numpy as np
import pytest
from PIL import Image

from liif.data.layout import PreparedData
from liif.data.prepare import prepare_split, write_manifest
from liif.errors import UserError
from liif.files import file_digest
from liif.images import ImageError, decode_image, matlab_bicubic
from liif.sources.base import SourceError
from liif.sources.sample import export_sample_suite


def test_prepare_writes_rgb_hr_matlab_lr_and_a_manifest(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 61), dtype=np.uint8)).save(raw / "grey.png")
    prepared = PreparedData(tmp_path / "prepared")
    prepare_split([raw / "grey.png"], prepared, "set", "test", lr_scales=[2, 3])
    hr = np.asarray(Image.open(prepared.hr("set", "test") / "grey.png"))
    assert hr.shape == (50, 61, 3)
    lr3 = np.asarray(Image.open(prepared.lr("set", "test", 3) / "greyx3.png"))
    assert np.array_equal(lr3, matlab_bicubic(np.ascontiguousarray(hr[:48, :60]), scale=1 / 3))
    manifest = write_manifest(prepared.dataset("set"), prepared.manifest("set")).read_text().splitlines()
    assert manifest[0] == "path\tbytes\tmd5" and len(manifest) == 4
    path, size, digest = manifest[1].split("\t")
    assert digest == file_digest(prepared.dataset("set") / path, "md5") and int(size) > 0


def test_truncated_image_is_reported_by_name(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 9).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageError, match="bad.png: not a readable image, unreadable or truncated"):
        decode_image(bad)


def test_sample_suite_is_offline_real_photos(tmp_path):
    pytest.importorskip("skimage")
    paths = export_sample_suite(["chelsea", "camera"], tmp_path)
    chelsea = np.asarray(Image.open(paths[0]))
    assert chelsea.shape == (300, 451, 3) and chelsea.std() > 20
    with pytest.raises(SourceError, match="unknown sample images"):
        export_sample_suite(["lena"], tmp_path)


def test_prepare_and_evaluation_read_a_16_bit_image_alike(tmp_path):
    """One decoder: prepare's HR file holds exactly the pixels the CLI and evaluation read from the original."""
    from liif.images import load_image

    rng = np.random.default_rng(1)
    deep = rng.integers(0, 65536, (30, 40), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    prepared = PreparedData(tmp_path / "prepared")
    prepare_split([tmp_path / "deep.png"], prepared, "set", "test", lr_scales=[])
    written = np.asarray(Image.open(prepared.hr("set", "test") / "deep.png"))
    read, notice = load_image(tmp_path / "deep.png")
    assert "converted I;16 image" in notice
    assert np.array_equal(written, (read.permute(1, 2, 0) * 255).round().byte().numpy())
    assert np.array_equal(written[..., 0], np.round(deep / 257).astype(np.uint8))  # scaled, not clipped at 255


def test_package_photographs_join_the_sample_suite(tmp_path):
    paths = export_sample_suite(["china", "flower", "grace_hopper"], tmp_path)
    shapes = [np.asarray(Image.open(p)).shape for p in paths]
    assert shapes == [(427, 640, 3), (427, 640, 3), (600, 512, 3)]
    assert all(np.asarray(Image.open(p)).std() > 20 for p in paths)


def test_squares_cut_photographs_into_whole_tiles(tmp_path):
    from liif.data.prepare import prepare_squares

    src = tmp_path / "photo.png"
    rgb = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(src)
    prepared = PreparedData(tmp_path / "prepared")
    prepare_squares([src], prepared, "squares", "train", sizes=[128, 32], tile=128)
    tiles = sorted(p.name for p in prepared.sized("squares", "train", 128).iterdir())
    assert tiles == [f"photo-{r:02d}-{c:02d}.png" for r in range(2) for c in range(3)]  # 300 x 420 -> 2 x 3 whole tiles
    assert np.array_equal(
        np.asarray(Image.open(prepared.sized("squares", "train", 128) / "photo-01-02.png")), rgb[128:256, 256:384]
    )
    small = Image.open(prepared.sized("squares", "train", 32) / "photo-01-02.png")
    expected = Image.fromarray(rgb[128:256, 256:384]).resize((32, 32), Image.Resampling.BICUBIC)
    assert small.size == (32, 32) and np.array_equal(np.asarray(small), np.asarray(expected))


def test_sample_datasets_are_prepared_as_their_source_plans_them(tmp_path):
    """Photographs get bicubic LR sets at data.lr_scales (``crop`` first); with ``sizes``, squares of every size."""
    from liif.data.prepare import prepare_datasets
    from liif.sources import fetch_datasets

    data = {
        "datasets": {
            "photos": {"source": "sample", "train": ["camera"], "test": ["coins"], "crop": 64},
            "tiles": {"source": "sample", "val": ["camera"], "sizes": [32, 16], "tile": 256},
        },
        "lr_scales": [2, 4],
    }
    fetch_datasets(data["datasets"], raw_root=tmp_path / "raw")
    prepared = PreparedData(tmp_path / "prepared")
    done = dict(prepare_datasets(data, raw_root=tmp_path / "raw", prepared=prepared))
    assert done == {"photos": prepared.manifest("photos"), "tiles": prepared.manifest("tiles")}
    photos = {row.split("\t")[0] for row in done["photos"].read_text().splitlines()[1:]}
    assert photos == {
        f"{split}/{folder}/{name}.png"
        for split, name in (("train", "camera"), ("test", "coins"))
        for folder, name in (("HR", name), ("LR_bicubic/X2", f"{name}x2"), ("LR_bicubic/X4", f"{name}x4"))
    }
    assert Image.open(prepared.lr("photos", "train", 4) / "camerax4.png").size == (16, 16)  # 64 px crop / 4
    tiles = {row.split("\t")[0] for row in done["tiles"].read_text().splitlines()[1:]}
    assert tiles == {f"val/{size}/camera-{r:02d}-{c:02d}.png" for size in (32, 16) for r in range(2) for c in range(2)}


def _victim(tmp_path):
    """A file beside the data folders that a dataset name must never reach."""
    victim = tmp_path / "victim" / "keep.txt"
    victim.parent.mkdir()
    victim.write_text("mine")
    return victim


@pytest.mark.parametrize("name", ["../../../victim", "{tmp}/victim", ".", "sample/.."])
def test_prepare_never_deletes_outside_its_folder(tmp_path, name):
    from liif.data.prepare import prepare_dataset

    victim = _victim(tmp_path)
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/prepared").mkdir()
    name = name.format(tmp=tmp_path)
    spec = {"source": "sample", "test": ["camera"]}
    with pytest.raises(UserError, match="not a name of a folder inside"):
        prepare_dataset(
            name,
            spec,
            raw_root=tmp_path / "data/raw",
            prepared=PreparedData(tmp_path / "data/prepared/x"),
            lr_scales=[2],
        )
    assert victim.read_text() == "mine"
