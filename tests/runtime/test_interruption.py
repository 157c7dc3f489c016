"""InterruptionController: backchannels are measured on the audio, not on event arrival."""

from __future__ import annotations

from vocalis.runtime.interruption import InterruptionController
from vocalis.runtime.options import InterruptionOptions
from vocalis.runtime.tasks import TaskOwner
from vocalis.utils.clock import ManualClock, settle


class Agent:
    """The session side: what was interrupted, paused, resumed."""

    def __init__(self, speaking: bool = True) -> None:
        self.speaking = speaking
        self.calls: list[str] = []

    def interrupt(self, source: str, cancel: bool) -> bool:
        self.calls.append(f"interrupt:{source}:{cancel}")
        return True

    def pause(self) -> bool:
        self.calls.append("pause")
        return True

    def resume(self) -> None:
        self.calls.append("resume")


def controller(agent: Agent, clock: ManualClock, **options: object) -> InterruptionController:
    return InterruptionController(
        InterruptionOptions(**options),  # type: ignore[arg-type]
        clock,
        TaskOwner("test"),
        agent.interrupt,
        agent_speaking=lambda: agent.speaking,
        pause=agent.pause,
        resume=agent.resume,
    )


async def test_short_voice_whose_end_arrives_late_is_still_a_backchannel() -> None:
    """The end of a 400 ms "mhm" is reported a 500 ms silence window later (0.9 s after the
    onset, past min_duration 0.6 s): it is still a backchannel, never an interruption."""
    clock, agent = ManualClock(), Agent()
    c = controller(agent, clock, min_duration_s=0.6)
    c.speech_started("local_vad", provider_cancels=False, onset_ms=1000.0, silence_s=0.5)
    await settle()
    await clock.advance(0.9)
    assert agent.calls == []
    assert c.speech_stopped(1400.0) is True
    await clock.advance(2.0)
    assert agent.calls == [] and c.false_interruptions == 1 and not c.pending


async def test_long_speech_interrupts_after_min_duration_plus_the_silence_window() -> None:
    clock, agent = ManualClock(), Agent()
    c = controller(agent, clock, min_duration_s=0.6)
    c.speech_started("server_vad", provider_cancels=False, onset_ms=0.0, silence_s=0.5)
    await settle()  # the confirmation timer starts sleeping at t=0
    await clock.advance(1.09)
    assert agent.calls == []
    await clock.advance(0.02)
    assert agent.calls == ["interrupt:server_vad:True"]
    assert c.speech_stopped(3000.0) is False  # already decided


async def test_speech_that_ended_long_enough_interrupts_at_once() -> None:
    clock, agent = ManualClock(), Agent()
    c = controller(agent, clock, min_duration_s=0.6, resume_false_interruption=True)
    c.speech_started("local_vad", provider_cancels=False, onset_ms=0.0, silence_s=0.5)
    assert agent.calls == ["pause"]
    assert c.speech_stopped(700.0) is False
    assert agent.calls == ["pause", "interrupt:local_vad:True"]


async def test_pause_and_resume_around_a_backchannel_only_over_agent_speech() -> None:
    clock, agent = ManualClock(), Agent()
    c = controller(agent, clock, min_duration_s=0.6, resume_false_interruption=True)
    c.speech_started("local_vad", provider_cancels=False, onset_ms=0.0, silence_s=0.5)
    assert c.speech_stopped(300.0) is True
    assert agent.calls == ["pause", "resume"] and c.resumed == 1
    # The agent is silent: short speech ("yes") is an ordinary turn, nothing paused.
    agent.speaking, agent.calls = False, []
    c.speech_started("local_vad", provider_cancels=False, onset_ms=5000.0, silence_s=0.5)
    assert c.speech_stopped(5300.0) is False
    assert agent.calls == [] and c.false_interruptions == 1


async def test_provider_cancels_or_zero_min_duration_interrupt_at_the_onset() -> None:
    clock, agent = ManualClock(), Agent()
    controller(agent, clock).speech_started("local_vad", provider_cancels=False)
    controller(agent, clock, min_duration_s=0.6).speech_started("server_vad", provider_cancels=True)
    assert agent.calls == ["interrupt:local_vad:True", "interrupt:server_vad:False"]
