"""Links between the project's Markdown files and the anchors they point at, as GitHub renders
them: used by the tests that keep the docs' and the alarms' links from going stale."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to
    hyphens, and -1, -2... for repeats. Fenced code is not scanned (a ``#`` there is a comment)."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def broken(target: Path, anchor: str | None) -> str | None:
    """Why a link to ``target`` (and ``#anchor``) does not resolve, or None when it does."""
    name = target.relative_to(REPO) if target.is_relative_to(REPO) else target.name
    if not target.is_file():
        return f"{name} does not exist"
    if anchor and anchor not in github_anchors(target.read_text(encoding="utf-8")):
        return f"{name} has no heading for #{anchor}"
    return None
