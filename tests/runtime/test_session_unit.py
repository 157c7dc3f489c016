"""AgentSession behaviour on a scripted in-memory provider (no sockets, manual clock)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
from fake_provider import FakeMessage, FakeResponse, FakeSession, tone

from vocalis.audio.espeak import synthesize
from vocalis.conversation.items import ConversationItem, FunctionCallOutputItem, MessageItem
from vocalis.providers.base import (
    ErrorKind,
    Generation,
    InputSpeechStarted,
    InputSpeechStopped,
    OperationError,
)
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import (
    AgentStateChanged,
    ConversationItemAdded,
    ErrorEvent,
    Interrupted,
    SessionClosedEvent,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
    TurnMetrics,
    UserStateChanged,
)
from vocalis.runtime.options import AgentSessionOptions, InterruptionOptions
from vocalis.runtime.session import AgentSession
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.tools import function_tool
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, wait_idle


class Rig:
    def __init__(
        self,
        session: AgentSession,
        provider: FakeSession,
        transport: MemoryTransport,
        clock: ManualClock,
    ) -> None:
        self.session = session
        self.provider = provider
        self.transport = transport
        self.clock = clock

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Everything here runs in-process on the manual clock: once every task is blocked,
        nothing changes until the clock moves, so the condition holds now or never."""
        await wait_idle()
        assert predicate(), "condition not reached with every task blocked"

    async def play_until(self, predicate: Callable[[], bool], limit_s: float = 30.0) -> None:
        steps = 0
        while not predicate():
            await self.clock.advance(0.02)
            steps += 1
            assert steps * 0.02 <= limit_s, "condition not reached"

    def assistant(self) -> list[MessageItem]:
        return [
            i for i in self.session.history if isinstance(i, MessageItem) and i.role == "assistant"
        ]

    def idle(self) -> bool:
        snap = self.session.snapshot()
        return not (snap.responses or snap.requesting or snap.resync_pending)


@contextlib.asynccontextmanager
async def rig(
    *,
    options: AgentSessionOptions | None = None,
    agent: Agent | None = None,
    provider: FakeSession | None = None,
) -> AsyncIterator[Rig]:
    clock = ManualClock()
    provider = provider or FakeSession()
    transport = MemoryTransport(clock)
    session = AgentSession(
        provider, transport, clock=clock, options=options or AgentSessionOptions()
    )
    await session.start(agent or Agent("Test agent."))
    try:
        yield Rig(session, provider, transport, clock)
    finally:
        await session.aclose()
        await transport.aclose()


async def test_say_goes_through_the_provider_with_say_exactly_and_no_tools() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("Welcome to the clinic.", 900)]))
        handle = r.session.say("Welcome to the clinic.")
        await r.until(lambda: "response.create" in r.provider.kinds())
        _, args = r.provider.ops[r.provider.kinds().index("response.create")]
        assert args == {
            "instructions": "Say exactly: Welcome to the clinic.",
            "tool_choice": "none",
        }
        await r.play_until(lambda: handle.done)
        assert not handle.interrupted and handle.kind == "say"
        assert [m.text for m in r.assistant()] == ["Welcome to the clinic."]
        assert handle.items == r.assistant()


async def test_uninterruptible_say_keeps_playing_through_caller_speech() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("This call is recorded.", 1500)]))
        handle = r.session.say("This call is recorded.", allow_interruptions=False)
        await r.until(lambda: bool(r.session.responses))
        await r.clock.advance(0.3)
        r.provider.emit(InputSpeechStarted("u1", 300))
        await r.until(lambda: r.session.user_state == "speaking")
        await r.play_until(lambda: handle.done)
        assert not handle.interrupted
        assert r.session.event_log and not [
            e for e in r.session.event_log if isinstance(e, Interrupted)
        ]
        (msg,) = r.assistant()
        assert msg.played_ms == 1500 and not msg.interrupted
        assert "truncate" not in r.provider.kinds()


async def test_interrupt_api_cancels_a_running_response_and_truncates() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("A long answer.", 3000)], finish=False))
        handle = r.session.generate_reply()
        await r.until(lambda: bool(r.session.responses))
        await r.clock.advance(0.5)
        assert r.session.interrupt()
        await r.until(lambda: handle.done)
        assert handle.interrupted
        assert r.provider.kinds().count("response.cancel") == 1
        (truncate,) = [args for kind, args in r.provider.ops if kind == "truncate"]
        assert 500 <= truncate[1] <= 520
        assert r.session.agent_state == "listening"


async def test_text_only_message_without_tts_is_shown_with_a_notice() -> None:
    async with rig() as r:
        r.provider.script.append(
            FakeResponse([FakeMessage("Sent as text only.", modalities=("text",))])
        )
        handle = r.session.generate_reply()
        await r.until(lambda: handle.done)
        assert r.transport.text.notices and "no TTS fallback" in r.transport.text.notices[0]
        (msg,) = r.assistant()
        assert msg.text == "Sent as text only." and msg.played_ms is None
        item_id = msg.id
        assert r.transport.text.agent_texts[item_id] == "Sent as text only."
        assert "delete" not in r.provider.kinds()


class ToneTTS:
    sample_rate = 16000

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def synthesize(self, text: str) -> np.ndarray:
        self.texts.append(text)
        return tone(1000, rate=self.sample_rate)


async def test_text_only_message_is_voiced_by_the_tts_fallback() -> None:
    tts = ToneTTS()
    async with rig(options=AgentSessionOptions(tts_fallback=tts)) as r:
        r.provider.script.append(
            FakeResponse([FakeMessage("Voiced by the fallback.", modalities=("text",))])
        )
        handle = r.session.generate_reply()
        await r.play_until(lambda: handle.done)
        assert tts.texts == ["Voiced by the fallback."]
        (msg,) = r.assistant()
        assert msg.text == "Voiced by the fallback." and msg.played_ms == 1000
        assert not r.transport.text.notices


async def test_interrupted_tts_fallback_replaces_the_text_item_with_the_heard_part() -> None:
    tts = ToneTTS()
    async with rig(options=AgentSessionOptions(tts_fallback=tts)) as r:
        text = "one two three four five six seven eight nine ten"
        r.provider.script.append(FakeResponse([FakeMessage(text, modalities=("text",))]))
        handle = r.session.generate_reply()
        await r.until(lambda: r.transport.sink.playing)
        await r.clock.advance(0.4)
        r.session.interrupt()
        await r.until(lambda: handle.done)
        (msg,) = r.assistant()
        assert msg.interrupted and text.startswith(msg.text) and 0 < len(msg.text) < len(text)
        kinds = r.provider.kinds()
        assert "truncate" not in kinds
        assert kinds.index("delete") < len(kinds) - 1
        created = [args for kind, args in r.provider.ops if kind == "create"]
        assert created and created[-1].text == msg.text


async def test_watchdog_releases_a_response_the_provider_never_ends() -> None:
    options = AgentSessionOptions(stall_timeout_s=2.0, cancel_timeout_s=1.0)
    async with rig(options=options) as r:
        r.provider.script.append(FakeResponse([FakeMessage("", 0)], finish=False, ack_cancel=False))
        first = r.session.generate_reply()
        await r.until(lambda: bool(r.session.responses))
        assert r.session.agent_states[-1] == "thinking"
        await r.play_until(lambda: first.done, limit_s=10)
        codes = [e.code for e in r.session.event_log if isinstance(e, ErrorEvent)]
        assert "response_stalled" in codes and "response_not_acknowledged" in codes
        assert r.session.agent_state == "listening"
        # The one-active-response slot was released: a new reply runs.
        r.provider.script.append(FakeResponse([FakeMessage("Hello again.", 400)]))
        second = r.session.generate_reply()
        await r.play_until(lambda: second.done)
        assert r.assistant()[-1].text == "Hello again."


@function_tool
def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


def orders_agent() -> Agent:
    return Agent("Orders.", tools=[lookup])


def checking_with_a_call() -> FakeResponse:
    """A preamble and one `lookup` call (`c1`)."""
    return FakeResponse(
        [FakeMessage("Checking.", 300)], calls=[("c1", "lookup", '{"order_id": "42"}')]
    )


async def test_failing_tool_becomes_an_error_output_and_a_follow_up() -> None:
    @function_tool
    def lookup(order_id: str) -> str:
        """Find an order."""
        raise KeyError(order_id)

    async with rig(agent=Agent("Orders.", tools=[lookup])) as r:
        r.provider.script.append(checking_with_a_call())
        r.provider.script.append(FakeResponse([FakeMessage("I could not find it.", 300)]))
        r.session.generate_reply()
        await r.play_until(lambda: len(r.assistant()) == 2)
        (output,) = [args for kind, args in r.provider.ops if kind == "tool_output"]
        assert output[0] == "c1" and "KeyError" in json.loads(output[1])["error"]
        finished = [e for e in r.session.event_log if isinstance(e, ToolCallFinished)]
        assert finished and finished[0].is_error
        outputs = [i for i in r.session.history if isinstance(i, FunctionCallOutputItem)]
        assert outputs and outputs[0].is_error
        assert r.provider.kinds().count("response.create") == 2


class RejectingOutputs(FakeSession):
    """A provider that refuses tool outputs (e.g. "Tool call ID … not found") and records
    what each history sync held."""

    def __init__(self) -> None:
        super().__init__()
        self.synced: list[list[str]] = []

    async def send_tool_output(
        self, call_id: str, output: str, *, item_id: str | None = None
    ) -> str:
        self.ops.append(("tool_output", (call_id, output)))
        raise OperationError(
            ErrorKind.NOT_FOUND, f"Tool call ID {call_id!r} not found", code="invalid_value"
        )

    async def sync_history(self, items: Sequence[ConversationItem]) -> None:
        self.ops.append(("sync", len(items)))
        self.synced.append([item.type for item in items])


async def test_rejected_tool_output_is_kept_and_synced_before_the_follow_up() -> None:
    """Issue #20: a rejected output is never dropped. It stays in the history, the re-sync
    puts call then output on the provider, and only then is the follow-up requested."""

    provider = RejectingOutputs()
    async with rig(agent=orders_agent(), provider=provider) as r:
        provider.script.append(checking_with_a_call())
        provider.script.append(FakeResponse([FakeMessage("It has shipped.", 300)]))
        r.session.generate_reply()
        await r.play_until(lambda: len(r.assistant()) == 2)
        outputs = [i for i in r.session.history if isinstance(i, FunctionCallOutputItem)]
        assert [o.call_id for o in outputs] == ["c1"] and outputs[0].output == "shipped"
        rejected = [e for e in r.session.event_log if isinstance(e, ErrorEvent)]
        assert [e.operation for e in rejected] == ["tool_output"] and rejected[0].recoverable
        kinds = r.provider.kinds()
        follow_up = [i for i, k in enumerate(kinds) if k == "response.create"][1]
        sync = kinds.index("sync")
        assert kinds.index("tool_output") < sync < follow_up
        assert provider.synced[0][-2:] == ["function_call", "function_call_output"]


class RefusingFollowUps(FakeSession):
    """A provider that refuses every reply after the first (a non-retried error kind)."""

    async def generate_reply(self, **kwargs: Any) -> Generation:
        if self.kinds().count("response.create"):
            self.ops.append(("response.create", kwargs))
            raise OperationError(ErrorKind.INVALID, "refused", code="invalid_value")
        return await super().generate_reply(**kwargs)


async def test_a_refused_follow_up_still_ends_in_listening_without_a_flicker() -> None:
    """Nothing hangs: the follow-up owed for the tool is refused, and the agent, `thinking`
    since the calling response's playout ended, goes to `listening` once — not before."""

    provider = RefusingFollowUps()
    async with rig(agent=orders_agent(), provider=provider) as r:
        provider.script.append(checking_with_a_call())
        r.session.generate_reply()
        await r.play_until(lambda: provider.kinds().count("response.create") == 2)
        await r.until(r.idle)
        failed = [e for e in r.session.event_log if isinstance(e, ErrorEvent)]
        assert [e.operation for e in failed] == ["response.create"]
        assert r.session.agent_state == "listening"
        assert r.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "thinking",
            "listening",
        ]


async def test_update_agent_switches_instructions_and_tools_live() -> None:
    def old_tool() -> str:
        return "old"

    def new_tool() -> str:
        return "new"

    async with rig(agent=Agent("First.", tools=[old_tool], voice="marin")) as r:
        await r.session.update_agent(Agent("Second.", tools=[new_tool], voice="cedar"))
        options = r.provider.options[-1]
        assert options.instructions == "Second."
        assert [t.name for t in options.tools] == ["new_tool"]
        assert options.voice is None  # voices cannot change mid-session
        r.provider.script.append(FakeResponse([], calls=[("c9", "new_tool", "{}")]))
        r.session.generate_reply()
        await r.play_until(lambda: "tool_output" in r.provider.kinds())
        (output,) = [args for kind, args in r.provider.ops if kind == "tool_output"]
        assert output == ("c9", "new")  # strings go to the model as they are


async def test_local_vad_turns_commit_and_request_the_reply() -> None:
    clip = synthesize("Hello, can you hear me?", sample_rate=24000)
    voice = np.asarray(clip.samples, dtype=np.int16)
    options = AgentSessionOptions(turn_detection=None)
    async with rig(options=options) as r:
        r.provider.script.append(FakeResponse([FakeMessage("Yes, loud and clear.", 800)]))
        r.transport.source.push(voice)
        r.transport.source.push(np.zeros(24000, dtype=np.int16))
        await r.until(lambda: "response.create" in r.provider.kinds())
        assert r.provider.kinds().index("commit") < r.provider.kinds().index("response.create")
        await r.play_until(lambda: len(r.assistant()) == 1 and r.idle())
        assert r.session.agent_states[:3] == ["listening", "thinking", "speaking"]


async def test_local_vad_backchannel_neither_interrupts_nor_becomes_a_turn() -> None:
    """S23 with local VAD: "mhm" over the agent keeps the answer playing, commits nothing,
    clears the provider's input buffer and requests no reply."""
    mhm = np.asarray(synthesize("mhm", sample_rate=24000).samples, dtype=np.int16)
    options = AgentSessionOptions(
        turn_detection=None, interruption=InterruptionOptions(min_duration_s=1.0)
    )
    async with rig(options=options) as r:
        r.provider.script.append(FakeResponse([FakeMessage("A long explanation.", 4000)]))
        handle = r.session.generate_reply()
        await r.until(lambda: bool(r.session.responses))
        await r.clock.advance(0.5)
        r.transport.source.push(mhm)
        r.transport.source.push(np.zeros(24000, dtype=np.int16))
        await r.until(lambda: r.session.user_state == "listening" and "clear" in r.provider.kinds())
        await r.play_until(lambda: handle.done and r.idle())
        assert not handle.interrupted
        assert r.session.snapshot().false_interruptions == 1
        assert r.assistant()[0].played_ms == 4000
        assert "commit" not in r.provider.kinds()
        assert r.provider.kinds().count("response.create") == 1
        assert not [i for i in r.session.history if isinstance(i, MessageItem) and i.role == "user"]


async def test_server_vad_speech_interrupts_without_sending_cancel() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("Tell me more.", 2000)]))
        handle = r.session.generate_reply()
        await r.until(lambda: bool(r.session.responses))
        await r.clock.advance(0.6)
        r.provider.emit(InputSpeechStarted("u2", 0))
        await r.until(lambda: handle.done)
        r.provider.emit(InputSpeechStopped("u2", 500))
        assert "response.cancel" not in r.provider.kinds()
        (truncate,) = [args for kind, args in r.provider.ops if kind == "truncate"]
        assert 600 <= truncate[1] <= 620


async def test_aclose_leaves_no_task_running_and_ends_event_streams() -> None:
    clock = ManualClock()
    provider = FakeSession()
    transport = MemoryTransport(clock)
    session = AgentSession(provider, transport, clock=clock)
    stream = session.events()
    await session.start(Agent("x"))
    provider.script.append(FakeResponse([FakeMessage("Still talking.", 5000)], finish=False))
    session.generate_reply()
    await clock.advance(0.2)
    await session.aclose()
    await transport.aclose()
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("session:")]
    assert leftover == []
    seen = [event async for event in stream]
    assert isinstance(seen[-1], SessionClosedEvent)
    assert session.agent_state == "closed"


async def test_metrics_count_latency_to_the_first_audible_sample_not_the_first_frame() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("Hi.", 500, lead_silence_ms=100)]))
        await r.clock.advance(1.0)
        handle = r.session.generate_reply()
        await r.until(lambda: bool(r.session.responses))
        await r.play_until(lambda: handle.done)
        (metrics,) = [e for e in r.session.event_log if isinstance(e, TurnMetrics)]
        assert metrics.first_audio_played_at == 1.0
        assert metrics.first_voice_played_at is not None
        assert abs(metrics.first_voice_played_at - 1.1) < 0.001  # sin(0) = 0: one sample later
        assert metrics.voice_to_voice_ms is None  # not a reply to caller speech
        assert metrics.time_to_first_audio_ms == 0.0  # requested and received at t=1.0
        assert [(m.generated_ms, m.played_ms, m.playout) for m in metrics.messages] == [
            (600.0, 600.0, "full")
        ]


async def test_typed_text_becomes_a_user_item_and_gets_a_reply() -> None:
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("Hello, reader.", 300)]))
        r.transport.send_text("hi there")
        r.transport.send_text("second line")
        await r.until(lambda: r.provider.kinds().count("create") == 2)
        created = [args for kind, args in r.provider.ops if kind == "create"]
        assert [c.text for c in created] == ["hi there", "second line"]
        assert len({c.id for c in created}) == 2
        await r.play_until(lambda: len(r.assistant()) >= 1 and r.idle())
        users = [i for i in r.session.history if isinstance(i, MessageItem) and i.role == "user"]
        assert [u.text for u in users] == ["hi there", "second line"]


async def test_agent_greeting_is_said_uninterruptibly_at_start() -> None:
    provider = FakeSession()
    provider.script.append(FakeResponse([FakeMessage("Hello, this is Ada.", 600)]))
    async with rig(provider=provider, agent=Agent("x", greeting="Hello, this is Ada.")) as r:
        await r.until(lambda: "response.create" in r.provider.kinds())
        _, args = r.provider.ops[r.provider.kinds().index("response.create")]
        assert args["instructions"] == "Say exactly: Hello, this is Ada."
        await r.until(lambda: bool(r.session.responses))
        (run,) = r.session.responses
        assert not run.allow_interruptions
        await r.play_until(lambda: len(r.assistant()) == 1)


async def test_events_tell_the_app_what_happened_in_order() -> None:
    """Issue 4's events: user and agent states, tool started/finished, items with the *heard*
    text (added after playout), metrics with generated vs played per message."""

    @function_tool
    async def hours(place: str) -> str:
        """Opening hours."""
        return "9-5"

    async with rig(agent=Agent("Hours.", tools=[hours])) as r:
        seen: list[SessionEvent] = []
        for kind in (
            AgentStateChanged,
            UserStateChanged,
            ConversationItemAdded,
            ToolCallStarted,
            ToolCallFinished,
            TurnMetrics,
        ):
            r.session.on(kind, seen.append)
        r.provider.script.append(
            FakeResponse(
                [FakeMessage("Let me check that.", 1000)],
                calls=[("c1", "hours", '{"place": "museum"}')],
            )
        )
        r.provider.script.append(
            FakeResponse([FakeMessage("It opens at nine and closes at five.", 3000)])
        )
        r.session.generate_reply()
        await r.play_until(lambda: len(r.assistant()) == 1 and bool(r.session.responses))
        # The caller barges into the follow-up answer after 1 s of it.
        await r.play_until(lambda: r.session.agent_state == "speaking")
        await r.clock.advance(1.0)
        r.provider.emit(InputSpeechStarted("u1", 0))
        await r.until(lambda: r.idle() and len(r.assistant()) == 2)
        r.provider.emit(InputSpeechStopped("u1", 800))
        await r.until(lambda: r.session.user_state == "listening")

        kinds = [type(e).__name__ for e in seen]
        assert kinds.index("ToolCallStarted") < kinds.index("ToolCallFinished")
        started = next(e for e in seen if isinstance(e, ToolCallStarted))
        assert (started.call_id, started.name) == ("c1", "hours")
        assert json.loads(started.arguments) == {"place": "museum"}
        user_states = [e.new for e in seen if isinstance(e, UserStateChanged)]
        assert user_states == ["speaking", "listening"]
        added = [e.item for e in seen if isinstance(e, ConversationItemAdded)]
        cut = r.assistant()[1]
        assert cut in added and cut.interrupted
        # The item event carries the heard prefix, never the whole generated text.
        assert cut.text and "It opens at nine and closes at five.".startswith(cut.text)
        assert cut.text != "It opens at nine and closes at five."
        metrics = [e for e in seen if isinstance(e, TurnMetrics)]
        assert len(metrics) == 2
        (message,) = metrics[1].messages
        assert message.generated_ms == 3000 and 1000 <= message.played_ms <= 1040
        assert message.playout == "partial" and metrics[1].interrupted
        agent_states = [e.new for e in seen if isinstance(e, AgentStateChanged)]
        # Barge-in: speaking -> listening; the caller's finished turn: thinking (server VAD
        # answers it).
        assert agent_states[-3:] == ["speaking", "listening", "thinking"]


async def test_history_metrics_do_not_depend_on_the_bounded_event_log() -> None:
    """The saved history keeps every turn's metrics even when the event log keeps 1 event."""
    async with rig(options=AgentSessionOptions(event_log_limit=1)) as r:
        handles: list[SpeechHandle] = []
        for text in ("One.", "Two."):
            r.provider.script.append(FakeResponse([FakeMessage(text, 300)]))
            handles.append(r.session.generate_reply())
            await r.play_until(lambda: handles[-1].done)
        assert len(r.session.event_log) == 1
        metrics = r.session.history_json()["metrics"]
        assert len(metrics) == 2


async def test_agent_state_changes_reach_the_transport_text_sink() -> None:
    """The playground's state badge is driven by TextSink.agent_state; the session must call it."""
    async with rig() as r:
        r.provider.script.append(FakeResponse([FakeMessage("Hello there.", 600)]))
        handle = r.session.generate_reply()
        await r.play_until(lambda: handle.done)
        await r.until(lambda: r.session.agent_state == "listening")
        assert r.transport.text.states == r.session.agent_states
        assert "speaking" in r.transport.text.states
        assert r.transport.text.states[-1] == "listening"
