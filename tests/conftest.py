"""Suite-wide pytest setup.

Its only job is its location: with pytest's default (prepend) import mode, the directory of a
rootless conftest goes on `sys.path`, so the shared helper modules in `tests/` (such as
`session_harness_support`) import the same way whether one folder or the whole suite runs.
"""
