"""Every relative link in README.md and docs/*.md points at a file that exists.

Links to the web (http, https, mailto) and pure in-page anchors (#section) are not checked here; a
relative link's own #anchor is dropped and the file it names must exist, relative to the page.
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
EXTERNAL = ("http://", "https://", "mailto:", "#")


def relative_links(text: str) -> list[str]:
    """The relative link targets of a Markdown page, code blocks excluded."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    found = [*INLINE.findall(text), *REFERENCE.findall(text), *IMG_SRC.findall(text)]
    return [target for target in found if not target.startswith(EXTERNAL)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and not (page.parent / path).exists():
            broken.append(target)
    return broken


def test_the_link_finder_sees_links_and_skips_code_and_the_web():
    # GIVEN a page with a link, an image, a reference, a web link, an anchor and a link inside code
    text = ("[a](docs/a.md#x) ![b](images/b.png) <img src=\"c.png\">\n[ref]: d.md\n"
            "[web](https://example.com) [anchor](#top) `[no](e.md)`\n```\n[no](f.md)\n```\n")
    # WHEN the relative links are extracted
    links = relative_links(text)
    # THEN only the four relative ones are found
    assert sorted(links) == ["c.png", "d.md", "docs/a.md#x", "images/b.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    # GIVEN a documentation page  WHEN its relative links are resolved against its folder
    broken = broken_links(page)
    # THEN each names an existing file
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"
