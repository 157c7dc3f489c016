"""A local realtime server speaking the OpenAI Realtime GA protocol (see docs/sim-server.md).

Sans-I/O core (conversation, session_config, responses, vad, brain, voice, faults) wrapped by a
thin websockets shell (server, session); ``vocalis sim-server`` runs it as a process.
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
