"""The docs name only files that exist in this repository, and no path outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Top-level entries of the repository: a backticked token starting with one is a repo path.
TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.name not in {".venv", ".git"}}
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A template such as clients/<name>.json or …/raw/* names no single file.
_PLACEHOLDER = re.compile(r"[<>*…{}]")
# A path that only exists on the machine a doc was written on.
_OUTSIDE = re.compile(r"^(\.\./|~/|/(work|home|Users|tmp|mnt|opt|var|root)/)")


def cited_paths(doc: Path) -> list[tuple[int, str, Path]]:
    """(line, as written, resolved) for every backticked repo path and every relative link."""
    found: list[tuple[int, str, Path]] = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        for token in _BACKTICKED.findall(line):
            if _OUTSIDE.match(token):
                found.append((number, token, Path("/nonexistent-outside-the-repository")))
            elif token.split("/")[0] in TOP_LEVEL and not _PLACEHOLDER.search(token):
                found.append((number, token, ROOT / token))
        for target in _LINK.findall(line):
            if not re.match(r"^[a-z]+:", target) and not target.startswith("#"):
                found.append((number, target, doc.parent / target.split("#")[0]))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_given_a_doc_when_its_cited_paths_are_resolved_then_each_exists_in_the_repository(doc: Path) -> None:
    # Given every repo path a doc cites in backticks or links to,
    cited = cited_paths(doc)
    # When each is looked up in this checkout,
    missing = [f"line {line}: {text}" for line, text, path in cited if not path.exists()]
    # Then it exists here (and none points outside the repository).
    assert missing == [], f"{doc.relative_to(ROOT)} cites paths that do not exist: {missing}"


def test_given_the_docs_then_they_cite_repository_paths_at_all() -> None:
    # The check above is only worth something if the pattern finds the docs' many citations.
    assert sum(len(cited_paths(doc)) for doc in DOCS) > 30
