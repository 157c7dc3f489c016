"""WebRTC transport tests (a package: its helpers are imported relative to it)."""
