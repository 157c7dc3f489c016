"""Running vocalis as a fleet member: admission, rate limit, health, metrics, graceful drain,
and a pool of worker processes on one machine (`vocalis serve --workers N`).

See `vocalis.worker.worker.Worker`, `vocalis.worker.supervisor.Supervisor` and
docs/deployment.md.
"""

from vocalis.worker.admission import Admission, AdmissionBook, Lease, LocalBook, Refusal
from vocalis.worker.fleet import FleetPlace, FleetTable
from vocalis.worker.lag import LoopLagMonitor
from vocalis.worker.ratelimit import AttemptLimiter, RateDecision
from vocalis.worker.supervisor import Supervisor
from vocalis.worker.worker import ADMIN_PATHS, Worker, drain_on

__all__ = [
    "ADMIN_PATHS",
    "Admission",
    "AdmissionBook",
    "AttemptLimiter",
    "FleetPlace",
    "FleetTable",
    "Lease",
    "LocalBook",
    "LoopLagMonitor",
    "RateDecision",
    "Refusal",
    "Supervisor",
    "Worker",
    "drain_on",
]
