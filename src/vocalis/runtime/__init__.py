"""The voice runtime: `AgentSession`, `Agent`, tools, playout, the heard ledger's caller.

Modules, one job each: `session` (wiring), `response` (one provider response end to end),
`playout` (one segment per message), `transcript` (words as they are heard), `scheduler`
(one active response), `interruption`, `states`, `tools` / `tool_executor`, `metrics`,
`events`, `speech`, `options`, `tasks` (owned tasks).
"""
