"""Untrusted data: crafted archives, misbehaving HTTP servers and decompression bombs are refused before anything
is written, and what is trusted when (checksums, sizes, a finished download).

Every archive and server is built inside the test; servers listen on loopback only.
"""

import io
import json
import os
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import benchmark_tar, png_bytes

from liif.sources import SourceError, fetch_dataset
from liif.sources.archives import ArchiveError, ArchiveLimits, check_archive, extract
from liif.sources.download import DownloadError, download


def tar_bytes(members: list[tarfile.TarInfo], data: dict | None = None, *, end_marker: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    raw = buf.getvalue()
    if not end_marker:  # cut right after the last member: what a connection lost at a boundary leaves
        raw = raw.rstrip(b"\0")
        raw += b"\0" * (-len(raw) % 512)
    return raw


def info(name, kind=tarfile.REGTYPE, linkname="", size=0) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.size = kind, linkname, size
    return member


def cve_2025_4517_tar(levels: int = 16) -> bytes:
    """The PATH_MAX bypass of the stdlib's tar 'data' filter (CPython gh-135034): a chain of long-named
    directories, each with a short symlink to it, resolves to a path longer than PATH_MAX, so the filter's
    realpath check passes; a last link climbs out through the chain and a file is written through it."""
    long = "d" * 247
    members, path = [], ""
    for step in "abcdefghijklmnop"[:levels]:
        members.append(info(os.path.join(path, long), tarfile.DIRTYPE))
        members.append(info(os.path.join(path, step), tarfile.SYMTYPE, linkname=long))
        path = os.path.join(path, long)
    chain = os.path.join(*"abcdefghijklmnop"[:levels], "l" * 254)
    members.append(info(chain, tarfile.SYMTYPE, linkname=os.path.join(*[".."] * levels)))
    members.append(info("escape", tarfile.SYMTYPE, linkname=os.path.join(chain, *[".."] * 5)))
    payload = b"written outside"
    members.append(info("escape/owned.txt", size=len(payload)))
    return tar_bytes(members, {"escape/owned.txt": payload})


def zip_with(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for zinfo, payload in entries:
            zf.writestr(zinfo, payload)
    return buf.getvalue()


def symlink_zip_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    zinfo = zipfile.ZipInfo(name)
    zinfo.create_system = 3
    zinfo.external_attr = 0o120777 << 16
    return zinfo, target.encode()


HOSTILE_ARCHIVES = {
    "cve-2025-4517-path-max-chain": cve_2025_4517_tar,
    "nested-symlink-chain": lambda: tar_bytes(
        [
            info("a", tarfile.SYMTYPE, linkname="b"),
            info("b", tarfile.SYMTYPE, linkname="c"),
            info("c", tarfile.SYMTYPE, linkname="../../../outside"),
            info("a/x.png", size=3),
        ],
        {"a/x.png": b"png"},
    ),
    "symlink-inside-only": lambda: tar_bytes(
        [info("x.png", size=3), info("y.png", tarfile.SYMTYPE, linkname="x.png")], {"x.png": b"png"}
    ),
    "hardlink-out": lambda: tar_bytes([info("h", tarfile.LNKTYPE, linkname="../../etc/passwd")]),
    "hardlink-inside": lambda: tar_bytes(
        [info("x.png", size=3), info("y.png", tarfile.LNKTYPE, linkname="x.png")], {"x.png": b"png"}
    ),
    "fifo": lambda: tar_bytes([info("pipe", tarfile.FIFOTYPE)]),
    "char-device": lambda: tar_bytes([info("dev", tarfile.CHRTYPE)]),
    "zip-symlink": lambda: zip_with([symlink_zip_entry("link", "../../outside")]),
    "zip-dotdot-backslash": lambda: zip_with([(zipfile.ZipInfo("ok\\..\\..\\evil.txt"), b"x")]),
    "sparse-member": lambda: sparse_tar(),
    "overlapping-zip-entries": lambda: overlapping_zip(),
}


def sparse_tar() -> bytes:
    """A GNU sparse member: 512 bytes in the archive, 30 MB once extracted (tarfile cannot write one)."""
    member = tarfile.TarInfo("data1024x1024/00001.png")
    member.size, member.type = 512, tarfile.GNUTYPE_SPARSE
    header = bytearray(member.tobuf(format=tarfile.GNU_FORMAT))
    octal = lambda n: f"{n:011o}".encode() + b"\0"  # noqa: E731
    header[386:398], header[398:410] = octal(0), octal(512)  # one data chunk of 512 bytes at offset 0
    header[482], header[483:495] = 0, octal(30 << 20)  # no extension headers; the real size
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header[:512]):06o}".encode() + b"\0 "
    return bytes(header) + b"A" * 512 + b"\0" * 10240


def overlapping_zip() -> bytes:
    """Two central-directory entries that point at one compressed stream (a quoted-overlap bomb)."""
    one = zip_with([(zipfile.ZipInfo("data1024x1024/a.png"), b"p" * 1000)])
    cd_start = one.index(b"PK\x01\x02")
    eocd = one.index(b"PK\x05\x06")
    entry = one[cd_start:eocd]
    twin = entry.replace(b"data1024x1024/a.png", b"data1024x1024/b.png")
    directory = entry + twin
    end = bytearray(one[eocd:])
    end[8:10] = end[10:12] = (2).to_bytes(2, "little")
    end[12:16] = len(directory).to_bytes(4, "little")
    return one[:cd_start] + directory + bytes(end)


@pytest.mark.parametrize("name", list(HOSTILE_ARCHIVES))
def test_crafted_archives_are_refused_before_anything_is_written(tmp_path, name):
    work = tmp_path / "a" / "b" / "c" / "d" / "e"  # five levels: room for an escape to land
    work.mkdir(parents=True)
    archive = work / "evil.tar"
    archive.write_bytes(HOSTILE_ARCHIVES[name]())
    with pytest.raises(ArchiveError, match="refusing"):
        extract(archive, work / "target")
    assert sorted(p.name for p in work.iterdir()) == ["evil.tar"]  # no target, no staging folder
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "a/b/c/d/e/evil.tar"
    ]


def test_a_tar_cut_at_a_member_boundary_is_not_complete(tmp_path):
    members = [info(f"img{i}.png", size=600) for i in range(3)]
    whole = tar_bytes(members, {f"img{i}.png": bytes([i]) * 600 for i in range(3)})
    cut = tar_bytes(members[:2], {f"img{i}.png": bytes([i]) * 600 for i in range(2)}, end_marker=False)
    assert whole.startswith(cut) and tarfile.open(fileobj=io.BytesIO(cut)).getnames() == ["img0.png", "img1.png"]
    (tmp_path / "whole.tar").write_bytes(whole)
    (tmp_path / "cut.tar").write_bytes(cut)
    assert len(check_archive(tmp_path / "whole.tar")) == 3
    with pytest.raises(ArchiveError, match="truncated tar archive"):
        check_archive(tmp_path / "cut.tar")


def test_a_zip_appended_to_a_tar_is_refused(tmp_path):
    """Format sniffing from the start (tar) and from the end (zip) must not disagree: the zip's bomb would
    be extracted past every limit checked on the tar."""
    small_tar = tar_bytes([info("data1024x1024/00001.png", size=100)], {"data1024x1024/00001.png": b"p" * 100})
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data1024x1024/bomb.png", bytes(40 << 20))
    (tmp_path / "poly.tar").write_bytes(small_tar + bomb.getvalue())
    with pytest.raises(ArchiveError, match="data after the tar's end-of-archive marker"):
        extract(tmp_path / "poly.tar", tmp_path / "target")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poly.tar"]


def test_small_members_cannot_add_up_to_a_bomb(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(64):
            zf.writestr(f"data1024x1024/{i:05d}.png", bytes(1 << 20))  # 1 MiB of zeros, about 1 kB each
    with pytest.raises(ArchiveError, match="decompression bomb"):
        extract(many, tmp_path / "target", ArchiveLimits(max_member_bytes=32 << 20, max_ratio=20.0))
    assert not (tmp_path / "target").exists()


def test_a_zip_bomb_and_an_oversized_member_are_refused_unopened(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("data/face.png", "w") as f:
        for _ in range(64):
            f.write(bytes(1 << 20))  # 64 MiB of zeros, about 64 KB compressed
    assert bomb.stat().st_size < 1 << 20
    limits = ArchiveLimits(max_member_bytes=1 << 30, max_ratio=20.0)  # the size alone would pass
    with pytest.raises(ArchiveError, match="expand to 67108864 .*decompression bomb"):
        extract(bomb, tmp_path / "target", limits)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as zf:
        zf.writestr("huge.png", os.urandom(2 << 20))
    with pytest.raises(ArchiveError, match="declares 2097152 bytes, more than 1048576"):
        extract(big, tmp_path / "target", ArchiveLimits(max_member_bytes=1 << 20))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip", "bomb.zip"]


def test_extraction_needs_the_declared_space(tmp_path, monkeypatch):
    import shutil

    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_with([(zipfile.ZipInfo("x.png"), b"p" * 5000)]))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(ArchiveError, match="needs 5000 bytes to extract, 100 free"):
        extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


class Misbehaving:
    """A loopback HTTP/1.1 server with scripted misbehaviour per file name (raw sockets: full control).

    ``files`` name -> bytes; ``modes`` name -> list of behaviours, one used per request (the last repeats):
    ``ok``, ``html`` (an error page with status 200), ``short`` (Content-Length announced, half sent),
    ``no-length-cut`` (no Content-Length, half sent), ``chunked-cut`` (chunked encoding stopping mid-way),
    ``wrong-range`` (206 whose Content-Range starts elsewhere), ``ignore-range`` (200 with everything).
    """

    def __init__(self):
        self.files, self.modes, self.requests = {}, {}, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        lines = request.decode().split("\r\n")
        name = lines[0].split()[1].lstrip("/")
        rng = next((l.split("=", 1)[1] for l in lines if l.lower().startswith("range:")), None)
        start = int(rng.split("-")[0]) if rng else 0
        self.requests.append((name, start if rng else None))
        modes = self.modes.get(name, ["ok"])
        mode = modes.pop(0) if len(modes) > 1 else modes[0]
        data = self.files.get(name)
        if data is None:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if mode == "html":
            page = b"<html><body>Please log in to download</body></html>"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(page)}\r\n"
            conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + page)
            return
        if rng and start >= len(data):
            conn.sendall(
                f"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len(data)}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            return
        if rng and mode not in ("ignore-range",):
            shown = start + 7 if mode == "wrong-range" else start
            status = f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {shown}-{len(data) - 1}/{len(data)}\r\n"
            body = data[shown:]
        else:
            status, body = "HTTP/1.1 200 OK\r\n", data
        if mode == "chunked-cut":
            conn.sendall((status + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
            half = body[: len(body) // 2]
            conn.sendall(f"{len(body):x}\r\n".encode() + half)  # announces the whole chunk, sends half
            return
        if mode == "no-length-cut":
            conn.sendall((status + "Connection: close\r\n\r\n").encode() + body[: len(body) // 2])
            return
        conn.sendall((status + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
        conn.sendall(body[: len(body) // 2] if mode == "short" else body)

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    s = Misbehaving()
    yield s
    s.close()


def archive_payload() -> bytes:
    return zip_with([(zipfile.ZipInfo(f"data1024x1024/{i:05d}.png"), png_bytes(40, 40, i)) for i in range(6)])


def fetch(server, tmp_path, name="a.zip", **kwargs):
    return download(
        f"{server.url}/{name}", tmp_path / name, check=check_archive, backoff=0.01, progress=False, **kwargs
    )


@pytest.mark.parametrize("mode", ["short", "chunked-cut", "wrong-range"])
def test_damaged_bodies_are_retried_until_complete(server, tmp_path, mode):
    data = archive_payload()
    server.files["a.zip"] = data
    server.modes["a.zip"] = ["short", mode, "ok"] if mode == "wrong-range" else [mode, "ok"]
    assert fetch(server, tmp_path).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]  # no .part left behind


@pytest.mark.parametrize("mode", ["html", "no-length-cut"])
def test_content_that_is_not_the_archive_is_never_promoted(server, tmp_path, mode):
    server.files["a.zip"] = archive_payload()
    server.modes["a.zip"] = [mode]
    with pytest.raises(DownloadError, match="a.zip.*(neither a zip nor a tar|not a readable zip)"):
        fetch(server, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_ignores_the_range_restarts_cleanly(server, tmp_path):
    data = archive_payload()
    server.files["a.zip"] = data
    (tmp_path / "a.zip.part").write_bytes(data[:100])
    server.modes["a.zip"] = ["ignore-range"]
    assert fetch(server, tmp_path).read_bytes() == data


@pytest.mark.parametrize("leftover", ["complete", "garbage", "too-large"])
def test_a_leftover_part_is_verified_or_discarded_never_stuck(server, tmp_path, leftover):
    data = archive_payload()
    server.files["a.zip"] = data
    part = tmp_path / "a.zip.part"
    part.write_bytes({"complete": data, "garbage": os.urandom(len(data)), "too-large": data + b"x" * 10}[leftover])
    size = len(data) if leftover == "too-large" else None
    assert fetch(server, tmp_path, size=size).read_bytes() == data
    assert not part.exists()
    if leftover == "complete":  # answered 416 and verified as it was: nothing downloaded again
        assert server.requests == [("a.zip", len(data))]


def test_trust_on_first_use_records_only_a_checked_archive_and_survives_dvc(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    trusted = tmp_path / "dataset-checksums.json"
    spec = {"source": "mirror", "mirror": str(mirror)}
    (mirror / "data1024x1024.zip").write_bytes(zip_with([(zipfile.ZipInfo("../escape.png"), b"x")]))
    with pytest.raises(SourceError, match="refusing entry '../escape.png'"):
        fetch_dataset("celeba-hq", spec, raw_root=tmp_path / "raw", trusted=trusted)
    assert not trusted.exists()  # the zip-slip archive was not trusted
    (mirror / "data1024x1024.zip").write_bytes(b"<html>Sign in to continue</html>")
    with pytest.raises(SourceError, match="neither a zip nor a tar"):
        fetch_dataset("celeba-hq", spec, raw_root=tmp_path / "raw", trusted=trusted)
    assert not trusted.exists()
    (mirror / "data1024x1024.zip").write_bytes(archive_payload())
    fetch_dataset("celeba-hq", spec, raw_root=tmp_path / "raw", trusted=trusted)
    assert set(json.loads(trusted.read_text())) == {"data1024x1024.zip"}
    import shutil

    shutil.rmtree(tmp_path / "raw")  # what DVC does before re-running download
    (mirror / "data1024x1024.zip").write_bytes(
        zip_with([(zipfile.ZipInfo("data1024x1024/00001.png"), png_bytes(40, 40, 99))])
    )
    with pytest.raises(SourceError, match="sha256 mismatch.*first trusted"):
        fetch_dataset("celeba-hq", spec, raw_root=tmp_path / "raw", trusted=trusted)


def test_published_checksum_guards_a_benchmark_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "benchmark.tar").write_bytes(benchmark_tar())
    with pytest.raises(SourceError, match="expected 250112000"):
        fetch_dataset(
            "set5", {"source": "mirror", "mirror": str(mirror)}, raw_root=tmp_path / "raw", trusted=tmp_path / "t.json"
        )
    assert not (tmp_path / "t.json").exists() and not Path(tmp_path / "raw" / "set5" / "extracted").exists()
