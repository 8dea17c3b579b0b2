"""The documentation holds together: every relative link and picture in README.md, docs/
and benchmarks/README.md points at a file that exists (and an #anchor at a heading of
that file), the README stays short and free of test counts, and its test command is
the one .ci/run runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

README_LIMIT = 12_000  # bytes: the README says what it is, how to start, and links the rest

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...
# "804 tests", "496 of the 804 tests", "804 passed" (but not "the 6,000 test images")
TEST_COUNT = re.compile(r"\b\d[\d,]*\s+(?:of\s+the\s+\d[\d,]*\s+)?(?:tests|passed|failed|skipped|deselected)\b",
                        re.IGNORECASE)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "benchmarks" / "README.md"]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code removed."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, INLINE_CODE.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(path: Path) -> list[str]:
    """Every relative link or picture in the Markdown file at path that does not resolve."""
    problems = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(path):
    assert path.is_file()
    assert broken_links(path) == []


def test_the_checker_finds_a_broken_link_a_missing_picture_and_a_wrong_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# A heading: with `code`\n\n## history.csv\n", encoding="utf-8")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "# Page",
        "[fine](other.md) [fine too](other.md#a-heading-with-code) [and](other.md#historycsv)",
        "![fine](pic.png) [here](#page) [web](https://example.org/nowhere.md)",
        "[gone](missing.md)",
        "![no picture](missing.png)",
        "[wrong anchor](other.md#no-such-heading)",
        "`[in code](missing-too.md)`",
        "```",
        "[in a block](missing-three.md)",
        "```",
    ]), encoding="utf-8")
    problems = broken_links(page)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["4", "5", "6"]
    assert "no such file" in problems[0] and "no such file" in problems[1]
    assert "no heading #no-such-heading" in problems[2]


def test_the_readme_is_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; move detail into docs/ (limit {README_LIMIT:,})"


def test_the_readme_holds_no_test_counts():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert TEST_COUNT.findall(text) == []
    assert TEST_COUNT.search("runs 496 of the 804 tests") and TEST_COUNT.search("804 passed")
    assert not TEST_COUNT.search("scores the 6,000 test images")


def test_the_readme_runs_the_tests_as_ci_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("python -m ")]
    assert "python -m pytest" in commands
    for command in commands:
        assert command in readme, f".ci/run runs `{command}`, which the README does not mention"
    data_dir = re.search(r'MNIST_DIR="\$\{MNIST_DIR:-([^}]+)\}"', ci).group(1)
    assert f"MNIST_DIR={data_dir}" in readme
