"""The front page and the docs pages link only to files the repository holds, and the front page stays short and
starts with the set-up commands.

A relative link that points at an untracked or missing file renders as a dead link on a git host, so every
relative link of README.md and docs/*.md must name a path in the git index (a file, or a folder holding tracked
files). The index is read directly from .git/index (no ``git`` process); without one the test skips. Links to
web pages (``http:``, ``https:``, ``mailto:``) and to anchors of the same page are not checked.
"""

import re
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 200
SETUP = (
    "bash scripts/install.sh && source .venv/bin/activate && liif repro --jobs auto"
    "   # install, then the whole study, offline\n"
    "source .venv/bin/activate && python -m pytest -q"
    "                                 # the tests\n"
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def git_index_paths(root: Path = ROOT) -> set[str]:
    """Every path staged in the git index (index versions 2, 3 and 4)."""
    index = root / ".git" / "index"
    if not index.is_file():
        pytest.skip("no .git/index: not a git checkout")
    data = index.read_bytes()
    if data[:4] != b"DIRC":
        raise AssertionError(f"{index}: not a git index")
    version, count = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
    paths: set[str] = set()
    pos, name = 12, b""
    for _ in range(count):
        entry = pos
        flags = int.from_bytes(data[pos + 60 : pos + 62], "big")
        pos += 62 + (2 if version >= 3 and flags & 0x4000 else 0)  # extended flags
        if version >= 4:  # path = previous path minus N trailing bytes, plus what follows (N an offset varint)
            strip = data[pos] & 0x7F
            while data[pos] & 0x80:
                pos += 1
                strip = ((strip + 1) << 7) | (data[pos] & 0x7F)
            pos += 1
            end = data.index(b"\0", pos)
            name = name[: len(name) - strip] + data[pos:end]
            pos = end + 1
        else:  # NUL-terminated, the entry padded with NULs to a multiple of 8 bytes
            end = data.index(b"\0", pos)
            name = data[pos:end]
            pos = entry + (end - entry + 8) // 8 * 8
        paths.add(name.decode("utf-8"))
    return paths


def tracked_targets(paths: set[str]) -> set[str]:
    """The tracked files and every folder above one."""
    targets = set(paths)
    for path in paths:
        targets.update(str(parent) for parent in PurePosixPath(path).parents if str(parent) != ".")
    return targets


def markdown_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every inline, image and reference link outside code blocks and code spans."""
    links, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        line = CODE_SPAN.sub("", line)
        targets = INLINE_LINK.findall(line) + REFERENCE_LINK.findall(line)
        links += [(number, target.strip("<>")) for target in targets]
    return links


def broken_links(page: Path, tracked: set[str], root: Path = ROOT) -> list[str]:
    """'page:line: target (why)' for each relative link of ``page`` that does not name a tracked path."""
    root, page = root.resolve(), page.resolve()
    broken = []
    for number, target in markdown_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path or EXTERNAL.match(path):
            continue
        where = f"{page.relative_to(root)}:{number}: {target}"
        if path.startswith("/"):
            broken.append(f"{where} (absolute: write it relative to the page)")
            continue
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(root):
            broken.append(f"{where} (outside the repository)")
        elif resolved.relative_to(root).as_posix() not in tracked:
            broken.append(f"{where} (no such tracked file)")
    return broken


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_name_tracked_files(page):
    tracked = tracked_targets(git_index_paths())
    assert page.relative_to(ROOT).as_posix() in tracked, f"{page.relative_to(ROOT)} is not tracked: git add it"
    assert broken_links(page, tracked) == []


def test_readme_is_short_and_opens_with_the_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md: move detail into docs/"
    block = re.search(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert block is not None, "README.md has no code block"
    assert block.group(1) == SETUP


def test_link_finder_skips_code_and_reads_every_link_form():
    text = (
        'See [a](docs/a.md), ![fig](reports/f.png "title") and [b](<docs/b c.md#part>).\n'
        "`[not](code.md)` [c](https://example.org/x) [d](#anchor) [e](dir/(x).md)\n"
        "```bash\n[no](inside.md)\n```\n"
        "~~~~\n```\n[no](still-inside.md)\n~~~~\n"
        "[ref]: docs/ref.md\n"
    )
    assert markdown_links(text) == [
        (1, "docs/a.md"),
        (1, "reports/f.png"),
        (1, "docs/b c.md#part"),
        (2, "https://example.org/x"),
        (2, "#anchor"),
        (2, "dir/(x).md"),
        (10, "docs/ref.md"),
    ]


def test_broken_links_names_each_bad_target(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "[ok](../README.md#set-up) [folder](../reports) [web](https://example.org) [here](#x)\n"
        "[gone](missing.md) [untracked](scratch.md) [out](../../elsewhere.md) [abs](/README.md)\n"
    )
    (tmp_path / "docs" / "scratch.md").write_text("not in the index")
    tracked = tracked_targets({"README.md", "reports/README.md", "docs/page.md"})
    assert broken_links(page, tracked, root=tmp_path) == [
        "docs/page.md:2: missing.md (no such tracked file)",
        "docs/page.md:2: scratch.md (no such tracked file)",
        "docs/page.md:2: ../../elsewhere.md (outside the repository)",
        "docs/page.md:2: /README.md (absolute: write it relative to the page)",
    ]


def test_index_reader_lists_tracked_files():
    paths = git_index_paths()
    assert {"README.md", "dvc.yaml", "liif/cli.py", "reports/figures/psnr_vs_scale_sample.png"} <= paths
    assert not any(path.startswith(("data/", "models/", ".venv/")) for path in paths)  # DVC outputs, ignored
