"""Every "spec x.y" / "lte-spec x.y" citation in the repository names a section that docs/paper.md or docs/lte.md
has, and nothing tracked points outside the repository for the specifications.

The tracked files are read from the git index itself (no ``git`` process), so the test also runs where only the
repository's own files exist; without a git index it skips.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"spec": ROOT / "docs" / "paper.md", "lte-spec": ROOT / "docs" / "lte.md"}
OUTSIDE_DOCS = "shared" + "/docs"  # spelt in two parts so that this file does not mention it
FIXTURE_DIRS = ("tests/data/",)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".txt", ".cfg", ".ini", ".mjs", ".json", ".lock"}

NUMBER = r"\d+(?:\.\d+)?"
CITATION = re.compile(
    rf"(?<![\w-])(lte-spec|spec)\s+(?:sections?\s+|§\s*)?"
    rf"({NUMBER}(?:\s*(?:-|–|/|,|and)\s*{NUMBER})*)"
    r"(?:\s+steps?\s+(\d+))?",
    re.IGNORECASE,
)
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*|T\d+)\.?\s", re.MULTILINE)


def tracked_files() -> list[str]:
    """Paths in the git index (versions 2-4), read directly from .git/index."""
    index = ROOT / ".git" / "index"
    if not index.is_file():
        pytest.skip("no git index: not a git checkout")
    data = index.read_bytes()
    assert data[:4] == b"DIRC", "unexpected git index signature"
    version = int.from_bytes(data[4:8], "big")
    count = int.from_bytes(data[8:12], "big")
    paths, offset, previous = [], 12, b""
    for _ in range(count):
        start = offset
        flags = int.from_bytes(data[offset + 60 : offset + 62], "big")
        offset += 62
        if version >= 3 and flags & 0x4000:
            offset += 2
        if version >= 4:  # the path shares a prefix with the previous one: varint of bytes to drop, then the rest
            drop, byte = 0, 0x80
            while byte & 0x80:
                byte = data[offset]
                offset += 1
                drop = (drop << 7) | (byte & 0x7F)
                if byte & 0x80:
                    drop += 1
            end = data.index(b"\0", offset)
            path = previous[: len(previous) - drop] + data[offset:end]
            offset = end + 1
        else:
            end = data.index(b"\0", offset)
            path = data[offset:end]
            offset = start + ((end - start) // 8 + 1) * 8  # entries are NUL-padded to a multiple of 8 bytes
        paths.append(path.decode())
        previous = path
    return paths


def text_of(path: str) -> str | None:
    file = ROOT / path
    if file.suffix not in TEXT_SUFFIXES or not file.is_file():
        return None
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def sections(page: Path) -> dict[str, str]:
    """Section number -> its text up to the next heading."""
    text = page.read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    return {
        match.group(1): text[match.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
        for i, match in enumerate(found)
    }


def cited_numbers(cited: str) -> list[str]:
    """'3.2-3.4 and 2.5' -> 3.2, 3.3, 3.4, 2.5; '2-5' -> 2, 3, 4, 5; '2.1/2.2' -> 2.1, 2.2."""
    numbers = []
    for part in re.split(r"\s*(?:/|,|and)\s*", cited):
        ends = re.split(r"\s*[-–]\s*", part)
        if len(ends) == 2 and ends[0].count(".") == ends[1].count(".") <= 1:
            head0, _, tail0 = ends[0].rpartition(".")
            head1, _, tail1 = ends[1].rpartition(".")
            if head0 == head1 and int(tail0) <= int(tail1):
                numbers += [f"{head0}.{k}" if head0 else str(k) for k in range(int(tail0), int(tail1) + 1)]
                continue
        numbers += ends
    return numbers


def citations():
    """(file:line, page key, section, step or None, the citation as written) for every citation in tracked text."""
    found = []
    own = {str(page.relative_to(ROOT)) for page in PAGES.values()}
    for path in tracked_files():
        if path in own or path.startswith(FIXTURE_DIRS):
            continue
        text = text_of(path)
        if text is None:
            continue
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            key = match.group(1).lower()
            step = match.group(3)
            for number in cited_numbers(match.group(2)):
                found.append((f"{path}:{line}", key, number, step, " ".join(match.group(0).split())))
    return found


def test_the_citation_parser_reads_lists_ranges_and_steps():
    text = "(spec 3.2-3.4 and 2.5) (paper spec section 2.3) (lte-spec 2.4 step 8) (Spec sections 2-5) (spec 3.4/4)"
    parsed = [(m.group(1).lower(), cited_numbers(m.group(2)), m.group(3)) for m in CITATION.finditer(text)]
    assert parsed == [
        ("spec", ["3.2", "3.3", "3.4", "2.5"], None),
        ("spec", ["2.3"], None),
        ("lte-spec", ["2.4"], "8"),
        ("spec", ["2", "3", "4", "5"], None),
        ("spec", ["3.4", "4"], None),
    ]


def test_both_pages_keep_the_section_numbers_the_code_cites():
    assert set(sections(PAGES["spec"])) >= {
        *"1 2 2.1 2.2 2.3 2.4 2.5 2.6 3 3.1 3.2 3.3 3.4 4 5 6 7".split(),
        *"T1 T2 T3 T4 T5".split(),
    }
    assert set(sections(PAGES["lte-spec"])) >= {*"1 2 2.1 2.2 2.3 2.4 2.5 2.6 3 4 5 5.1 6 7 8 T1 T2".split()}


def test_every_spec_citation_resolves_to_a_section_of_the_project_pages():
    pages = {key: sections(page) for key, page in PAGES.items()}
    found = citations()
    assert len(found) > 50, "the citation pattern no longer finds the code's citations"
    broken = []
    for where, key, number, step, written in found:
        body = pages[key].get(number)
        if body is None:
            broken.append(f"{where}: '{written}': {PAGES[key].name} has no section {number}")
        elif step and not re.search(rf"^\s*{step}\.\s", body, re.MULTILINE):
            broken.append(f"{where}: '{written}': section {number} of {PAGES[key].name} has no step {step}")
    assert not broken, "\n".join(broken)


def test_no_tracked_file_points_outside_the_repository_for_the_specifications():
    hits = []
    for path in tracked_files():
        if path.startswith(FIXTURE_DIRS):
            continue
        text = text_of(path)
        if text is None:
            continue
        hits += [f"{path}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE_DOCS in line]
    assert not hits, f"cite docs/paper.md or docs/lte.md instead: {hits}"


def test_the_pages_do_not_refer_outside_the_repository():
    for page in PAGES.values():
        assert "../shared" not in page.read_text(encoding="utf-8"), page
