"""The user docs stay user docs: no internal rulebook, no references to notes that are not in
the repository, and every conformance code they cite (S1, S23, ...) names a test file."""

from __future__ import annotations

import re

from cli_support import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_no_internal_documents_or_missing_references() -> None:
    assert not (REPO / "docs" / "TEAM_BRIEF.md").exists()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "field-problems" not in text, doc.name
        assert "TEAM_BRIEF" not in text, doc.name
        assert not re.search(r"\bP\d{1,2}\b", text), f"{doc.name} cites a P-code"


def test_conformance_codes_name_existing_tests() -> None:
    tests = {p.name.split("_")[1] for p in (REPO / "tests" / "conformance").glob("test_s*.py")}
    for doc in DOCS:
        for code in set(re.findall(r"\b(S\d{1,2})\b", doc.read_text(encoding="utf-8"))):
            assert code.lower() in tests, (
                f"{doc.name} cites {code}: no tests/conformance/test_{code.lower()}_*.py"
            )
