"""Dataset sources: local folders in the official layout, mirrors (directory and loopback HTTP), CelebA's message."""

import dataclasses
import io
import shutil
import tarfile

import numpy as np
import pytest
from conftest import need
from PIL import Image
from test_download import Server

from liif.catalogue import CATALOGUE, PUBLISHED, Archive, lookup
from liif.evaluate import evaluate_pairs
from liif.images import list_images
from liif.layout import PreparedData
from liif.models import Bicubic
from liif.prepare import celeba_split, prepare_official
from liif.resize import matlab_bicubic
from liif.sources import SourceError, dataset_root, fetch_dataset


def png_bytes(h, w, seed):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def benchmark_tar() -> bytes:
    """A miniature benchmark.tar in the EDSR layout."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("Set5", "Set14", "B100", "Urban100"):
            files = [(f"benchmark/{name}/HR/im.png", png_bytes(24, 24, 0))]
            files += [
                (f"benchmark/{name}/LR_bicubic/X{s}/imx{s}.png", png_bytes(24 // s, 24 // s, s)) for s in (2, 3, 4)
            ]
            for path, data in files:
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def unpinned(monkeypatch):
    """Let the miniature archives stand in for the real ones: drop the published size and checksum."""

    def unpin(name):
        dataset = CATALOGUE[name]
        archives = tuple(Archive(a.name, a.url) for a in dataset.archives)
        monkeypatch.setitem(CATALOGUE, name, dataclasses.replace(dataset, archives=archives))

    return unpin


def test_every_official_archive_but_celeba_has_a_published_size_and_checksum():
    for name, dataset in CATALOGUE.items():
        for archive in dataset.archives:
            if name == "celeba-hq":
                assert archive.url is None and archive.sha256 is None
                continue
            assert (archive.size, archive.sha256) == PUBLISHED[archive.name]
            assert archive.url.startswith("https://") and archive.url.endswith("/" + archive.name)
            assert len(archive.sha256) == 64 and int(archive.sha256, 16) >= 0


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
    prepare_official(root, lookup("set5"), prepared, "set5", "test", scales=(2, 3, 4))
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
    with pytest.raises(SourceError, match="source: 'ftp'"):
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
    prepare_official(root, lookup("div2k-train"), prepared, "div2k", "train", scales=(2,))
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
    split = celeba_split(
        names, split_json=tmp_path / "raw" / "celeba-hq" / "archives" / "split.json", val_fraction=0.2, seed=0
    )
    assert (split["train"], split["val"]) == (["00001.png", "00003.png"], ["000004.jpg"])  # unknown ids dropped


def test_a_damaged_trust_file_is_an_error_not_a_traceback(tmp_path):
    trusted = tmp_path / "dataset-checksums.json"
    trusted.write_text("[1, 2]")
    with pytest.raises(SourceError, match="expected an object of archive name -> SHA-256; restore it from git"):
        fetch_dataset(
            "celeba-hq", {"source": "mirror", "mirror": str(tmp_path)}, raw_root=tmp_path / "raw", trusted=trusted
        )
