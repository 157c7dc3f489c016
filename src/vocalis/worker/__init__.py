"""Running vocalis as a fleet member: admission, rate limit, health, metrics, graceful drain.

See `vocalis.worker.worker.Worker` and docs/deployment.md.
"""

from vocalis.worker.admission import Admission, Lease, Refusal
from vocalis.worker.lag import LoopLagMonitor
from vocalis.worker.ratelimit import AttemptLimiter, RateDecision
from vocalis.worker.worker import ADMIN_PATHS, Worker, drain_on

__all__ = [
    "ADMIN_PATHS",
    "Admission",
    "AttemptLimiter",
    "Lease",
    "LoopLagMonitor",
    "RateDecision",
    "Refusal",
    "Worker",
    "drain_on",
]
