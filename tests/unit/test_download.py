"""Downloads and extraction against a loopback HTTP server started by the test."""

import hashlib
import io
import tarfile
import zipfile

import pytest
from conftest import Server

from liif.sources.archives import ArchiveError, extract
from liif.sources.download import DownloadError, download


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def make_zip(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(entries: dict, links: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_download_is_verified_and_idempotent(server, tmp_path):
    data = make_zip({"benchmark/Set5/HR/baby.png": b"x" * 5000})
    server.files["benchmark.zip"] = data
    dest = download(
        f"{server.url}/benchmark.zip", tmp_path / "benchmark.zip", size=len(data), sha256=sha(data), progress=False
    )
    assert dest.read_bytes() == data
    n = len(server.requests)
    download(f"{server.url}/benchmark.zip", dest, size=len(data), sha256=sha(data), progress=False)
    assert len(server.requests) == n  # a second run downloads nothing
    out = extract(dest, tmp_path / "out")
    assert (out / "benchmark" / "Set5" / "HR" / "baby.png").read_bytes() == b"x" * 5000


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    data = make_tar({f"img{i}.png": bytes([i]) * 100_000 for i in range(5)})
    server.files["a.tar"] = data
    server.cut["a.tar"] = 123_456  # the first response stops early
    dest = download(f"{server.url}/a.tar", tmp_path / "a.tar", sha256=sha(data), backoff=0.01, progress=False)
    assert dest.read_bytes() == data
    assert server.requests[-1] == ("a.tar", "bytes=123456-")
    assert not (tmp_path / "a.tar.part").exists()


def test_resume_from_a_previous_run(server, tmp_path):
    data = bytes(range(256)) * 1000
    server.files["b.bin"] = data
    (tmp_path / "b.bin.part").write_bytes(data[:1000])  # left by a killed run
    download(f"{server.url}/b.bin", tmp_path / "b.bin", size=len(data), progress=False)
    assert (tmp_path / "b.bin").read_bytes() == data
    assert server.requests == [("b.bin", "bytes=1000-")]


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    server.files["c.zip"] = make_zip({"x.png": b"1"})
    with pytest.raises(DownloadError, match=r"c.zip.*sha256 mismatch"):
        download(f"{server.url}/c.zip", tmp_path / "c.zip", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_name_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing.zip: HTTP 404"):
        download(f"{server.url}/missing.zip", tmp_path / "m.zip", progress=False)
    server.status["busy.zip"] = 503
    with pytest.raises(DownloadError, match=r"busy.zip: failed after 3 attempts"):
        download(f"{server.url}/busy.zip", tmp_path / "b.zip", retries=2, backoff=0.01, progress=False)
    assert sum(1 for name, _ in server.requests if name == "busy.zip") == 3


def test_existing_corrupt_file_is_reported(tmp_path):
    (tmp_path / "d.zip").write_bytes(b"short")
    with pytest.raises(DownloadError, match="5 bytes, expected 10"):
        download("http://127.0.0.1:9/d.zip", tmp_path / "d.zip", size=10, progress=False)


@pytest.mark.parametrize(
    "archive",
    [
        make_zip({"../evil.txt": b"x"}),
        make_zip({"/abs/evil.txt": b"x"}),
        make_tar({"ok/../../evil.txt": b"x"}),
        make_tar({"/etc/evil": b"x"}),
        make_tar({"ok.txt": b"x"}, links={"link": "../../outside"}),
        make_tar({"ok.txt": b"x"}, links={"abs": "/etc/passwd"}),
    ],
    ids=["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-absolute", "tar-link-out", "tar-link-absolute"],
)
def test_escaping_archives_are_refused(tmp_path, archive):
    path = tmp_path / "evil.bin"
    path.write_bytes(archive)
    with pytest.raises(ArchiveError, match="refusing"):
        extract(path, tmp_path / "target")
    assert not (tmp_path / "target").exists() and not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.bin"]


def test_truncated_archive_is_reported(tmp_path):
    data = make_zip({f"f{i}": bytes(2000) for i in range(10)})
    (tmp_path / "t.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="t.zip"):
        extract(tmp_path / "t.zip", tmp_path / "target")
    assert not (tmp_path / "target").exists()
