"""What a call leaves behind: the live transcript, the JSON/JSONL records and the timeline page.

`live_view` (the terminal transcript), `outputs` (history JSON, events JSONL, and the timeline
model built from them), `timeline` (the timeline model and its self-contained HTML page),
`event_log` (the bounded in-memory record of a long call's events).
"""
