"""`vocalis serve AGENT_REF --playground | --twilio`: put an agent on a network endpoint.

Why: the same agent a developer tried with `vocalis run` must be one flag away from a browser
page (talk to it with a microphone, see the heard transcript) or a phone line (Twilio Media
Streams). Each incoming connection gets its own `AgentSession` on the chosen realtime endpoint.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from vocalis.app.endpoint import add_endpoint_arguments
from vocalis.app.errors import UsageError

WORKERS_ENV = "VOCALIS_WORKERS"

EPILOG = """\
examples:
  vocalis serve examples/assistant_with_tools.py:agent --playground
      then open the printed URL (it carries a random access token)
  vocalis serve examples/assistant_with_tools.py:agent --webrtc
      the same page, calling over WebRTC (needs the `webrtc` extra)
  vocalis serve examples/telephony_agent.py:agent --twilio --host 0.0.0.0 --port 8080
      then put the printed <Stream url=".../twilio/TOKEN"/> in your TwiML, with wss:// and
      your public host (Twilio only connects over TLS: run behind a TLS proxy or tunnel)

Without OPENAI_API_KEY or --realtime-url, an embedded sim-server answers (offline).
The access token is random per start; set VOCALIS_TOKEN to share one across workers.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Serve an agent: a browser playground (--playground, or over WebRTC with --webrtc) "
        "and/or a Twilio Media Streams WebSocket (--twilio); one AgentSession per connection."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "agent_ref", metavar="AGENT_REF", help="path/to/file.py:name or module:name"
    )
    _add_what_to_serve(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="TCP port, 0 = any free port (default: 8080)"
    )
    parser.add_argument(
        "--twilio-port",
        type=int,
        metavar="PORT",
        help="port for --twilio when both are served (default: --port + 1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write each call's history.json, events.jsonl and timeline.html to DIR/call-N/",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart when a .py/.yaml/.json file in the agent's folder changes "
        "(development; needs the reload extra)",
    )
    rtc = parser.add_argument_group("WebRTC (with --webrtc; see docs/transports.md)")
    rtc.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="a STUN or TURN server for ICE, e.g. stun:stun.example.org:3478 (repeatable); "
        "TURN credentials come from VOCALIS_TURN_USERNAME / VOCALIS_TURN_CREDENTIAL; "
        "default: host candidates only",
    )
    _add_fleet_arguments(parser)
    add_endpoint_arguments(parser)


def _add_what_to_serve(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("what to serve (at least one; default: --playground)")
    which.add_argument(
        "--playground",
        action="store_true",
        help="browser page with microphone, live heard transcript and agent state",
    )
    which.add_argument(
        "--twilio", action="store_true", help="Twilio Media Streams WebSocket (μ-law 8 kHz)"
    )
    which.add_argument(
        "--webrtc",
        action="store_true",
        help="the playground page calling over WebRTC (Opus, jitter buffer, echo "
        "cancellation); needs the `webrtc` extra",
    )


def _add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    fleet = parser.add_argument_group(
        "running behind a load balancer (see docs/deployment.md)",
        "Every port also answers /healthz (503 when full or draining), /livez and /metrics "
        "(Prometheus). SIGTERM or Ctrl-C drains: new calls are refused, running calls "
        "finish; a second signal stops at once.",
    )
    fleet.add_argument(
        "--workers",
        type=int,
        default=os.environ.get(WORKERS_ENV) or None,
        metavar="N",
        help="worker processes sharing the ports (default: one per CPU core, or "
        f"${WORKERS_ENV}); --max-sessions is a limit for all of them together; "
        "1 = this process serves alone",
    )
    fleet.add_argument(
        "--max-sessions",
        type=int,
        metavar="N",
        help="refuse calls beyond N at once (HTTP 503 with a reason; default: no limit)",
    )
    fleet.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="on SIGTERM, wait at most S seconds for running calls (default: 300)",
    )
    fleet.add_argument(
        "--admin-port",
        type=int,
        metavar="PORT",
        help="also serve /healthz, /livez and /metrics alone on this port (e.g. for probes)",
    )
    fleet.add_argument(
        "--trust-proxy",
        action="append",
        metavar="CIDR",
        help="believe X-Forwarded-For only from this proxy address or network (repeatable); "
        "the right-most hop that is not a trusted proxy is the client",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so `vocalis serve --help` stays instant.
    if args.reload:
        from vocalis.app.reload import serve_with_reload

        if args.workers not in (None, 1):
            # A restart must free the ports at once; a draining pool would hold them.
            raise UsageError("--reload serves with one process; drop --workers")
        os.environ[WORKERS_ENV] = "1"  # the restarted command serves alone

        return serve_with_reload(args.agent_ref)
    from vocalis.app.serve_run import serve

    return serve(args)
