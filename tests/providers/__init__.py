"""Provider tests: a package, so that its conftest.py is `providers.conftest` to mypy."""
