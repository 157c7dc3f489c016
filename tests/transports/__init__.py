"""Transport tests: a package, so that its conftest.py is `transports.conftest` to mypy."""
