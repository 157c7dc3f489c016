"""The multi-agent example: triage hands the caller to billing (one module per example)."""
