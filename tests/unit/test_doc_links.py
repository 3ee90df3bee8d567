"""Every link between the project's documents resolves, anchor included: a renamed heading or a
moved file shows up here, not in front of the person following the link."""

from __future__ import annotations

import re
from pathlib import Path

from tests.markdown_links import REPO, broken

# [text](target): relative targets only; web addresses are not fetched.
MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
# A repository path with an anchor written as text, as alarms and CLI messages quote them.
PATH_LINK = re.compile(r"(?<![\w/.-])(?P<path>(?:docs/)?[\w.-]+\.md)#(?P<anchor>[\w-]+)")


def _documents() -> list[Path]:
    return sorted([*REPO.glob("*.md"), *(REPO / "docs").glob("*.md")])


def _sources() -> list[Path]:
    return sorted(
        p for d in ("infra", "cli", "shared", "functions", "sandbox") for p in (REPO / d).rglob("*.py")
    )


def test_given_the_documents_when_their_relative_links_are_followed_then_each_file_and_anchor_exists() -> (
    None
):
    problems = []
    for document in _documents():
        text = document.read_text(encoding="utf-8")
        for match in MARKDOWN_LINK.finditer(text):
            target = match.group("target")
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (document.parent / path).resolve() if path else document
            if problem := broken(resolved, anchor or None):
                problems.append(f"{document.relative_to(REPO)}: ({target}) {problem}")
    assert problems == []


def test_given_code_and_docs_when_they_quote_a_document_section_by_path_then_it_exists() -> None:
    """``docs/runbook.md#pollfailing`` in an alarm, a CLI message or a document: a path from the
    repository's root (or from the document's folder) and a heading's anchor."""
    problems = []
    for source in [*_documents(), *_sources()]:
        for match in PATH_LINK.finditer(source.read_text(encoding="utf-8")):
            path, anchor = match.group("path"), match.group("anchor")
            # From the repository's root, or (a document's own link) from its folder.
            reasons = [broken(REPO / path, anchor), broken(source.parent / path, anchor)]
            if all(reasons):
                problems.append(f"{source.relative_to(REPO)}: {path}#{anchor}: {reasons[-1]}")
    assert problems == []


def test_given_a_heading_renamed_when_a_link_points_at_its_old_anchor_then_it_is_reported(
    tmp_path: Path,
) -> None:
    document = tmp_path / "guide.md"
    document.write_text("# Guide\n\n## Pause and resume\n", encoding="utf-8")
    assert broken(document, "pause-and-resume") is None
    assert broken(document, "pause") is not None
    assert broken(tmp_path / "missing.md", None) is not None
