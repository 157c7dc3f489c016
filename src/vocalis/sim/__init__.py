"""A local realtime server speaking the OpenAI Realtime GA protocol (see docs/sim-server.md).

Split by job:

* sans-I/O protocol core — :mod:`~vocalis.sim.protocol` (``ProtocolCore``: state and the
  dispatch table ``HANDLERS``, client event -> server events + :mod:`~vocalis.sim.commands`),
  with its parts: :mod:`~vocalis.sim.envelope` (frame checks), :mod:`~vocalis.sim.session_config`
  and :mod:`~vocalis.sim.fields` (the session object, null rules, typed views),
  :mod:`~vocalis.sim.conversation`, :mod:`~vocalis.sim.items`, :mod:`~vocalis.sim.responses`
  (one response's event stream), :mod:`~vocalis.sim.vad`, :mod:`~vocalis.sim.brain`,
  :mod:`~vocalis.sim.mcp`, :mod:`~vocalis.sim.faults` (when a fault is due),
  :mod:`~vocalis.sim.client_secrets`, :mod:`~vocalis.sim.admission` (handshake decisions);
* asyncio driver — :mod:`~vocalis.sim.session` (``SimSession``: pacing, outbox, commands,
  a handler per ``FaultKind``) and :mod:`~vocalis.sim.recorder` (what tests read);
* serving — :mod:`~vocalis.sim.server` (Starlette routes, ``SimServer``),
  :mod:`~vocalis.sim.serving` (the shared `WebServer`, sim limits), :mod:`~vocalis.sim.tls`,
  :mod:`~vocalis.sim.dialect` (other wire protocols, e.g. ``vocalis.sim.gemini``);
  ``vocalis sim-server`` (:mod:`~vocalis.sim.command`) runs it as a process.
"""

from vocalis.sim.scenario import Scenario, load_scenario
from vocalis.sim.server import SimServer, SimServerThread, run_sim_server_in_thread
from vocalis.sim.session import SimSession

__all__ = [
    "Scenario",
    "SimServer",
    "SimServerThread",
    "SimSession",
    "load_scenario",
    "run_sim_server_in_thread",
]
