"""Fixtures of the browser tests in this folder (playground, text-only playground)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("VOCALIS_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def chromium() -> str:
    """Debian chromium; a missing browser is a failure with the fix, not a silent skip
    (deselect with `-m "not browser"`)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        pytest.fail(f"chromium not found at {CHROMIUM}: run `make chromium`")
    return path
