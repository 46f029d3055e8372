"""Every relative link in README.md and docs/*.md points at a file that exists.

Links to the web (http, https, mailto) are not checked. A relative link must name an existing file,
relative to the page; an #anchor into a Markdown page (or within the same page) must be one of that page's
headings, slugged the way GitHub does.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# [text](target "title") and ![alt](target), reference definitions "[id]: target", and <img src="target">
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
EXTERNAL = ("http://", "https://", "mailto:")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def relative_links(text: str) -> list[str]:
    """The relative link targets of a Markdown page, code blocks excluded."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    found = [*INLINE.findall(text), *REFERENCE.findall(text), *IMG_SRC.findall(text)]
    return [target for target in found if not target.startswith(EXTERNAL)]


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation other than - and _ dropped, spaces to -, -1 on repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.split("?", 1)[0].partition("#")
        file = (page.parent / path) if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(target)
    return broken


def test_the_link_finder_sees_links_and_skips_code_and_the_web():
    # GIVEN a page with a link, an image, a reference, a web link, an anchor and a link inside code
    text = ("[a](docs/a.md#x) ![b](images/b.png) <img src=\"c.png\">\n[ref]: d.md\n"
            "[web](https://example.com) [anchor](#top) `[no](e.md)`\n```\n[no](f.md)\n```\n")
    # WHEN the relative links are extracted
    links = relative_links(text)
    # THEN the relative ones and the in-page anchor are found, not the web link or code
    assert sorted(links) == ["#top", "c.png", "d.md", "docs/a.md#x", "images/b.png"]


def test_anchors_are_slugged_as_github_does():
    # GIVEN headings with inline code, punctuation, a repeat, and a heading inside a code block
    text = "# Title\n## `python -m ops.traffic`: move traffic\n## Title\n```\n# not a heading\n```\n"
    # WHEN their anchors are computed
    found = anchors(text)
    # THEN they match GitHub's ids
    assert found == {"title", "python--m-opstraffic-move-traffic", "title-1"}


def test_a_missing_file_and_a_missing_anchor_are_reported(tmp_path):
    # GIVEN a page linking to an existing page's real and unknown headings, and to a missing file
    (tmp_path / "other.md").write_text("# Real heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#real-heading) [bad](other.md#nope) [gone](missing.md) [self](#here)\n## Here\n",
                    encoding="utf-8")
    # WHEN its links are checked
    broken = broken_links(page)
    # THEN exactly the unknown anchor and the missing file are reported
    assert broken == ["other.md#nope", "missing.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    # GIVEN a documentation page  WHEN its relative links are resolved against its folder
    broken = broken_links(page)
    # THEN each names an existing file
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"
