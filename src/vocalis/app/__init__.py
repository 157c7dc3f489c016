"""The user-facing commands and what they share.

* `cli/` — the command line: one parser module per command (`configure(parser)`,
  `run(args)`), lazy dispatch (`vocalis.app.cli.main`) and the options several commands share;
* `*_run.py` — what each command does once its arguments are parsed (`run_wav`, `serve_run`,
  `chat_run`, `console_run`, `demo_run`) and `run_app` / `reload`;
* `reports/` — what a call leaves behind: the live transcript, history/events files, the
  timeline page;
* shared helpers: `agent_ref` (AGENT_REF → agent or per-call factory), `endpoint` (which
  realtime server), `conversation` (one call end to end), `logs`, `errors`, `terminal`.
"""
