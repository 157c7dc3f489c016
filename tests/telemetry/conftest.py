"""Make the conformance harness and the serve tests' phone importable: the traced calls
here are conformance calls and phone calls to `vocalis serve`."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for folder in ("conformance", "cli"):
    path = str(_TESTS / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
