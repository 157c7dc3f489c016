"""What `vocalis run` does once its arguments are parsed (see `vocalis.app.cli.run`).

Order matters for the user: every check that can fail on their input (the WAV, the endpoint
flags, the agent reference) runs before anything connects, so a typo costs no tokens and ends
in one line with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vocalis.app.agent_ref import load_agent
from vocalis.app.conversation import ConversationRecord, converse
from vocalis.app.endpoint import choose_endpoint
from vocalis.app.errors import EXIT_FAILED, UsageError
from vocalis.app.reports.live_feed import ViewTextSink
from vocalis.app.reports.live_view import LiveTranscript, LiveView
from vocalis.app.reports.outputs import write_call_files
from vocalis.app.terminal import make_console
from vocalis.transports.file import FileTransport, WavInputError, load_input_wav
from vocalis.utils import event_loop
from vocalis.utils.clock import MonotonicClock
from vocalis.utils.logcontext import bind_call

# After the WAV ended, hang up once the agent has been silent this long (server VAD needs
# ~0.5 s of silence to end the last turn, then the model needs time to answer).
HANGUP_AFTER_QUIET_S = 2.5


def _check_writable(paths: list[Path | None]) -> None:
    for path in paths:
        if path is None:
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"cannot write {path}: {parent} is not a directory")


def run_wav(args: argparse.Namespace) -> int:
    try:
        audio = load_input_wav(args.input)
    except WavInputError as exc:
        raise UsageError(str(exc)) from exc
    endpoint = choose_endpoint(args)
    agent = load_agent(args.agent_ref)
    _check_writable([args.record, args.history, args.events, args.timeline])
    if args.max_seconds <= 0:
        raise UsageError(f"--max-seconds must be positive, got {args.max_seconds}")

    # Progress and the transcript on stdout; failures on stderr (one line each).
    console = make_console(quiet=args.quiet)
    status = make_console(quiet=args.quiet)
    errors = make_console(stderr=True)
    status.print(
        f"[bold]vocalis run[/bold] {args.agent_ref} on {args.input} "
        f"({audio.num_samples / audio.sample_rate:.1f} s) → {endpoint.describe()}"
    )
    clock = MonotonicClock()
    model = LiveTranscript(title="vocalis run")
    view = LiveView(model, console)
    transport = FileTransport(
        audio,
        clock=clock,
        text_sink=ViewTextSink(model, view.refresh),
        idle_hangup_s=HANGUP_AFTER_QUIET_S,
        max_tail_s=args.max_seconds,
    )
    record = ConversationRecord()
    with view, bind_call(call="run"):
        try:
            event_loop.run(
                converse(
                    agent,
                    endpoint,
                    transport,
                    clock=clock,
                    view=view,
                    max_seconds=args.max_seconds,
                    record=record,
                )
            )
        except KeyboardInterrupt:
            record.stopped = True  # the session was closed on the way out: the record is whole
    written = write_run_outputs(args, record, transport)
    if written:
        status.print(f"wrote {', '.join(str(p) for p in written)}")
    if record.stopped:
        errors.print("vocalis run: stopped (Ctrl-C); the outputs hold what was heard until then")
        return 130
    if record.timed_out:
        errors.print(f"vocalis run: error: the run did not finish within {args.max_seconds:g} s")
        return EXIT_FAILED
    if record.errors:
        errors.print(f"vocalis run: error: {record.errors[0]}")
        return EXIT_FAILED
    return 0


def write_run_outputs(
    args: argparse.Namespace, record: ConversationRecord, transport: FileTransport
) -> list[Path]:
    written: list[Path] = []
    if args.record is not None:
        transport.recorder.write(args.record)  # creates the folder
        written.append(args.record)
    return written + write_call_files(
        record.history,
        record.events,
        history_path=args.history,
        events_path=args.events,
        timeline_path=args.timeline,
        title=f"vocalis run {args.agent_ref}",
    )
