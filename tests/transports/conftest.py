"""Fixtures of the browser tests in this folder (playground, text-only playground, WebRTC)."""

from __future__ import annotations

import pytest

from browser_support import chromium_path


@pytest.fixture
def chromium() -> str:
    """Debian chromium; a missing browser is a failure with the fix, not a silent skip
    (deselect with `-m "not browser"`)."""
    return chromium_path()
