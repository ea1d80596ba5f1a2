"""Dataset sources: local folders in the official layout, mirrors (directory and loopback HTTP), CelebA's message."""

import dataclasses
import shutil

import numpy as np
import pytest
from conftest import Server, benchmark_tar, need, png_bytes
from PIL import Image

from liif.data.layout import PreparedData
from liif.data.prepare import prepare_dataset
from liif.errors import UserError
from liif.eval.scores import evaluate_pairs
from liif.images import list_images, matlab_bicubic
from liif.models import Bicubic
from liif.sources import SourceError, dataset_plan, dataset_root, fetch_dataset
from liif.sources.base import ShippedPairs, Squares
from liif.sources.catalogue import CATALOGUE, Archive
from liif.sources.official import celeba_split


@pytest.fixture
def unpinned(monkeypatch):
    """Let the miniature archives stand in for the real ones: drop the published size and checksum."""

    def unpin(name):
        dataset = CATALOGUE[name]
        archives = tuple(Archive(a.name, a.url) for a in dataset.archives)
        monkeypatch.setitem(CATALOGUE, name, dataclasses.replace(dataset, archives=archives))

    return unpin


# The public records, copied here independently of liif.sources.catalogue: the DIV2K archives from TensorFlow
# Datasets (tensorflow/datasets, tensorflow_datasets/datasets/div2k/checksums.tsv), the EDSR benchmark.tar as
# a public SISR project records and checks it (250,112,000 bytes, SHA-256 80c21c33...).
DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"


PUBLIC_RECORD = {
    "div2k-train": [
        (DIV2K + "DIV2K_train_HR.zip", 3530603713, "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"),
        (
            DIV2K + "DIV2K_train_LR_bicubic_X2.zip",
            925390592,
            "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",
        ),
        (
            DIV2K + "DIV2K_train_LR_bicubic_X3.zip",
            427847282,
            "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",
        ),
        (
            DIV2K + "DIV2K_train_LR_bicubic_X4.zip",
            246914039,
            "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
        ),
    ],
    "div2k-valid": [
        (DIV2K + "DIV2K_valid_HR.zip", 448993893, "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"),
        (
            DIV2K + "DIV2K_valid_LR_bicubic_X2.zip",
            117763600,
            "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",
        ),
        (
            DIV2K + "DIV2K_valid_LR_bicubic_X3.zip",
            54513392,
            "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",
        ),
        (
            DIV2K + "DIV2K_valid_LR_bicubic_X4.zip",
            31505881,
            "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
        ),
    ],
    **{
        name: [
            (
                "https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
                250112000,
                "80c21c333bbf6ceb5308b7243761f8284478274413a97b96f1d63e9045fd93e8",
            )
        ]
        for name in ("set5", "set14", "b100", "urban100")
    },
    "celeba-hq": [(None, None, None), (None, None, None)],  # no public link or record: trusted on first use
}


def test_every_official_archive_is_pinned_to_its_public_record():
    pinned = {name: [(a.url, a.size, a.sha256) for a in dataset.archives] for name, dataset in CATALOGUE.items()}
    assert pinned == PUBLIC_RECORD
    for dataset in CATALOGUE.values():
        for archive in dataset.archives:  # the name looked up in a mirror is the file the link serves
            assert archive.url is None or archive.url.rsplit("/", 1)[1] == archive.name
    assert [a.name for a in CATALOGUE["celeba-hq"].archives] == ["data1024x1024.zip", "split.json"]


def test_a_mirror_copy_that_differs_from_the_published_archive_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "benchmark.tar").write_bytes(benchmark_tar())  # not the real 250,112,000-byte archive
    with pytest.raises(SourceError, match=r"benchmark.tar.*250112000"):
        fetch_dataset("set5", {"source": "mirror", "mirror": str(mirror)}, raw_root=tmp_path / "raw")
    assert not any((tmp_path / "raw" / "set5" / "archives").iterdir())  # nothing half-written left


def test_local_benchmark_is_verified_in_place_and_reproduces_bicubic(datasets_dir, tmp_path):
    spec = {"source": "local", "path": str(datasets_dir)}  # the folder holding benchmark/
    root = fetch_dataset("set5", spec, raw_root=tmp_path / "raw")
    assert root == datasets_dir and not (tmp_path / "raw").exists()  # nothing copied
    prepared = PreparedData(tmp_path / "prepared")
    (part,) = dataset_plan("set5", spec, raw_root=tmp_path / "raw").parts  # its shipped LR sets, not bicubic ones
    assert isinstance(part, ShippedPairs) and part.split == "test" and sorted(part.lr) == [2, 3, 4]
    prepare_dataset("set5", spec, raw_root=tmp_path / "raw", prepared=prepared, lr_scales=())
    hr = list_images(prepared.hr("set5", "test"))
    for s, published in zip((2, 3, 4), (33.66, 30.39, 28.42)):
        scores = evaluate_pairs(
            Bicubic(), hr, scale=s, protocol="benchmark", lr_dir=prepared.lr("set5", "test", s), progress=False
        )
        assert abs(sum(x.psnr for x in scores) / len(scores) - published) <= 0.02


def test_local_folder_with_missing_lr_is_refused(tmp_path):
    (tmp_path / "benchmark" / "Set5" / "HR").mkdir(parents=True)
    (tmp_path / "benchmark" / "Set5" / "HR" / "a.png").write_bytes(png_bytes(8, 8, 1))
    with pytest.raises(SourceError, match="LR images missing"):
        fetch_dataset("set5", {"source": "local", "path": str(tmp_path)})
    with pytest.raises(SourceError, match="no HR images"):
        fetch_dataset("set14", {"source": "local", "path": str(tmp_path)})


def test_http_mirror_downloads_extracts_and_records_checksums(tmp_path, unpinned):
    unpinned("set14")
    server = Server()
    try:
        server.files["benchmark.tar"] = benchmark_tar()
        spec = {"source": "mirror", "mirror": server.url}
        trusted = tmp_path / "dataset-checksums.json"
        root = fetch_dataset("set14", spec, raw_root=tmp_path, trusted=trusted)
        assert root == dataset_root("set14", spec, raw_root=tmp_path)
        assert (root / "benchmark" / "Set14" / "LR_bicubic" / "X3" / "imx3.png").is_file()
        assert "benchmark.tar" in trusted.read_text()
        requests = len(server.requests)
        fetch_dataset("set14", spec, raw_root=tmp_path, trusted=trusted)  # idempotent
        assert len(server.requests) == requests
    finally:
        server.close()


def test_directory_mirror_with_a_corrupted_archive_is_refused(tmp_path, unpinned):
    unpinned("b100")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "benchmark.tar").write_bytes(benchmark_tar())
    spec = {"source": "mirror", "mirror": str(mirror)}
    trusted = tmp_path / "dataset-checksums.json"
    fetch_dataset("b100", spec, raw_root=tmp_path / "raw", trusted=trusted)
    # the recorded checksum now guards later copies, also after DVC deleted data/raw
    shutil.rmtree(tmp_path / "raw")
    (mirror / "benchmark.tar").write_bytes(benchmark_tar()[:-512] + b"\0" * 512 + b"x")
    with pytest.raises(SourceError, match=f"sha256 mismatch.*first trusted, recorded in {trusted}"):
        fetch_dataset("b100", spec, raw_root=tmp_path / "raw", trusted=trusted)
    assert not (tmp_path / "raw" / "b100" / "archives" / "benchmark.tar").exists()


def test_celeba_official_explains_where_to_put_the_archive(tmp_path):
    with pytest.raises(SourceError, match="no working public download.*data1024x1024.zip"):
        fetch_dataset("celeba-hq", {"source": "official"}, raw_root=tmp_path)
    with pytest.raises(UserError, match="data.datasets.set5.source: 'ftp' is not a dataset source"):
        fetch_dataset("set5", {"source": "ftp"}, raw_root=tmp_path)


def test_local_div2k_with_only_x2_and_our_bicubic_reproduces_the_official_lr(datasets_dir, tmp_path):
    root = need(datasets_dir / "div2k")
    with pytest.raises(SourceError, match="X3: 1 LR images missing"):
        fetch_dataset("div2k", {"source": "local", "path": str(root), "catalogue": "div2k-train"})
    with pytest.raises(SourceError, match=r"lr_scales \[8\]"):
        fetch_dataset("div2k", {"source": "local", "path": str(root), "catalogue": "div2k-train", "lr_scales": [8]})
    spec = {"source": "local", "path": str(root), "catalogue": "div2k-train", "lr_scales": [2]}
    assert fetch_dataset("div2k", spec) == root
    prepared = PreparedData(tmp_path / "prepared")
    prepare_dataset("div2k", {**spec, "split": "train"}, raw_root=tmp_path / "raw", prepared=prepared, lr_scales=())
    hr = np.asarray(Image.open(prepared.hr("div2k", "train") / "0004.png"))
    official = np.asarray(Image.open(prepared.lr("div2k", "train", 2) / "0004x2.png"))
    assert hr.shape == (1344, 2040, 3) and official.shape == (672, 1020, 3)
    assert np.array_equal(matlab_bicubic(hr, scale=0.5), official)  # bit for bit, as on Set5/Set14


def test_celeba_directory_mirror_with_split_json(tmp_path):
    import json
    import zipfile

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    names = ["00001.png", "00002.png", "00003.png", "000004.jpg"]
    with zipfile.ZipFile(mirror / "data1024x1024.zip", "w") as zf:
        for i, name in enumerate(names):
            zf.writestr(f"data1024x1024/{name}", png_bytes(32, 32, i))  # Pillow reads by content, not suffix
    (mirror / "split.json").write_text(json.dumps({"train": ["00001", "00003.png", "99999"], "val": ["000004"]}))
    trusted = tmp_path / "dataset-checksums.json"
    root = fetch_dataset(
        "celeba-hq", {"source": "mirror", "mirror": str(mirror)}, raw_root=tmp_path / "raw", trusted=trusted
    )
    assert sorted(p.name for p in (root / "data1024x1024").iterdir()) == sorted(names)
    recorded = json.loads(trusted.read_text())
    assert set(recorded) == {"data1024x1024.zip", "split.json"}  # trusted from now on
    plan = dataset_plan("celeba-hq", {"source": "mirror", "mirror": str(mirror)}, raw_root=tmp_path / "raw")
    split = plan.split_record
    assert (split["train"], split["val"]) == (["00001.png", "00003.png"], ["000004.jpg"])  # unknown ids dropped
    assert split["source"] == str(tmp_path / "raw" / "celeba-hq" / "archives" / "split.json")
    assert [(type(p), p.split, [i.name for i in p.images], p.sizes) for p in plan.parts] == [
        (Squares, "train", ["00001.png", "00003.png"], (256, 128, 64, 32)),
        (Squares, "test", ["000004.jpg"], (256, 128, 64, 32)),
    ]
    assert celeba_split(names, split_json=None, val_fraction=0.5, seed=0) != split  # without it: a seeded shuffle


def test_a_damaged_trust_file_is_an_error_not_a_traceback(tmp_path):
    trusted = tmp_path / "dataset-checksums.json"
    trusted.write_text("[1, 2]")
    with pytest.raises(SourceError, match="expected an object of archive name -> SHA-256; restore it from git"):
        fetch_dataset(
            "celeba-hq", {"source": "mirror", "mirror": str(tmp_path)}, raw_root=tmp_path / "raw", trusted=trusted
        )


@pytest.mark.parametrize("name", ["../victim", "../../victim", "/victim"])
def test_a_download_never_writes_outside_its_folder(tmp_path, name):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    name = str(tmp_path / "victim") if name == "/victim" else name
    with pytest.raises(UserError, match="not a name of a folder inside"):
        fetch_dataset(name, {"source": "sample", "test": ["camera"]}, raw)
    with pytest.raises(UserError, match="not a name of a folder inside"):
        dataset_root(name, {"source": "official"}, raw)
    assert not (tmp_path / "victim").exists() and not (tmp_path / "data" / "victim").exists()
