"""The user-facing commands (`vocalis demo/run/serve/console`) and what they share.

Each command module exposes ``configure(parser)`` and ``run(args) -> int`` for the lazy registry
in `vocalis.cli`; the helpers here (agent loading, the simulated caller, the live view, the
timeline page, output files) are plain modules so they can be tested without a terminal.
"""
