"""Worked examples of the ledger, one per field scenario it decides (S1-S5, S10, text-only)."""

from __future__ import annotations

from vocalis.conversation.heard import WordTiming, heard_prefix
from vocalis.conversation.items import FunctionCallItem, MessageItem
from vocalis.conversation.ledger import (
    AnnouncedItem,
    Delete,
    MessageOutcome,
    ReplaceText,
    ResponseOutcome,
    ToolCallOutcome,
    Truncate,
    settle_response,
)

PREAMBLE = "Let me check."
ANSWER = "The weather in Paris is sunny with a light breeze all afternoon."


def _msg(item_id: str, playout: str, played: float, received: float, text: str) -> MessageOutcome:
    return MessageOutcome(item_id, playout, played, received, text)  # type: ignore[arg-type]


def test_s1_preamble_full_answer_partial_third_never_pulled() -> None:
    result = settle_response(
        ResponseOutcome(
            "r",
            (
                AnnouncedItem("a", "message"),
                AnnouncedItem("b", "message"),
                AnnouncedItem("c", "message"),
            ),
            (_msg("a", "full", 1200, 1200, PREAMBLE), _msg("b", "partial", 300.7, 6000, ANSWER)),
        )
    )
    assert result.ops == (Truncate("b", 300), Delete("c"))
    a, b = result.items
    assert isinstance(a, MessageItem) and a.text == PREAMBLE and not a.interrupted
    assert isinstance(b, MessageItem) and b.interrupted and b.played_ms == 300
    assert b.text == heard_prefix(ANSWER, 300, 6000)
    assert result.interrupted


def test_s2_barge_in_during_preamble_deletes_the_answer() -> None:
    result = settle_response(
        ResponseOutcome(
            "r",
            (AnnouncedItem("a", "message"), AnnouncedItem("b", "message")),
            (_msg("a", "partial", 200, 1200, PREAMBLE), _msg("b", "skipped", 0, 6000, ANSWER)),
        )
    )
    assert result.ops == (Truncate("a", 200), Delete("b"))
    assert [item.id for item in result.items] == ["a"]


def test_s3_barge_in_before_first_audio_deletes_never_truncates_at_zero() -> None:
    result = settle_response(
        ResponseOutcome(
            "r", (AnnouncedItem("a", "message"),), (_msg("a", "partial", 0.6, 0.0, ""),)
        )
    )
    assert result.ops == (Delete("a"),)
    assert result.items == ()


def test_s4_clock_lead_is_clamped_to_received_audio() -> None:
    # The item was cut short (cancelled at the barge-in): truncated at the audio that exists,
    # so the provider also drops the transcript that ran ahead of it.
    cut = MessageOutcome("a", "partial", 3760, 3700, ANSWER, audio_complete=False)
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("a", "message"),), (cut,)))
    assert result.ops == (Truncate("a", 3700),)


def test_a_clear_after_the_last_sample_of_a_complete_item_is_heard_in_full() -> None:
    # The cut rule lives here only: the provider no longer second-guesses it. A complete item
    # whose every received millisecond played needs no truncate (it would only drop the
    # server's transcript of audio the caller heard).
    result = settle_response(
        ResponseOutcome(
            "r", (AnnouncedItem("a", "message"),), (_msg("a", "partial", 3760, 3700, ANSWER),)
        )
    )
    assert result.ops == ()
    (item,) = result.items
    assert isinstance(item, MessageItem) and item.text == ANSWER and not item.interrupted


def test_s5_fast_generation_truncates_at_played_not_received() -> None:
    result = settle_response(
        ResponseOutcome(
            "r", (AnnouncedItem("a", "message"),), (_msg("a", "partial", 2000, 10000, ANSWER),)
        )
    )
    assert result.ops == (Truncate("a", 2000),)


def test_s10_counting_prefix_with_word_timings() -> None:
    text = ", ".join(str(i) for i in range(1, 21))
    words = text.split(" ")
    timings = tuple(WordTiming(w, i * 500, i * 500 + 400) for i, w in enumerate(words))
    outcome = MessageOutcome("a", "partial", 2600, 10000, text, word_timings=timings)
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("a", "message"),), (outcome,)))
    (item,) = result.items
    assert isinstance(item, MessageItem)
    assert item.text == "1, 2, 3, 4, 5,"


def test_full_message_with_tool_call_keeps_both_and_no_ops() -> None:
    call = ToolCallOutcome("f", "call_1", "get_weather", '{"city": "Paris"}')
    result = settle_response(
        ResponseOutcome(
            "r",
            (AnnouncedItem("a", "message"), AnnouncedItem("f", "function_call")),
            (_msg("a", "full", 1200, 1200, PREAMBLE),),
            (call,),
        )
    )
    assert result.ops == ()
    assert isinstance(result.items[1], FunctionCallItem)
    assert result.kept_call_ids == ("call_1",)
    assert not result.interrupted


def test_text_only_partial_via_tts_is_replaced_not_truncated() -> None:
    outcome = MessageOutcome("t", "partial", 1000, 4000, ANSWER, has_audio=False)
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("t", "message"),), (outcome,)))
    (op,) = result.ops
    assert isinstance(op, ReplaceText) and ANSWER.startswith(op.text) and op.text


def test_text_only_full_without_audio_is_kept() -> None:
    outcome = MessageOutcome("t", "full", 0, 0, ANSWER, has_audio=False)
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("t", "message"),), (outcome,)))
    assert result.ops == ()
    (item,) = result.items
    assert isinstance(item, MessageItem) and item.text == ANSWER and item.played_ms is None


def test_transcript_ahead_of_incomplete_audio_is_not_credited() -> None:
    # S11 with a cancelled item: 1.0 s audio received, transcript for ~3.5 s already sent.
    outcome = MessageOutcome("a", "partial", 1000, 1000, ANSWER, audio_complete=False)
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("a", "message"),), (outcome,)))
    (item,) = result.items
    assert isinstance(item, MessageItem)
    assert len(item.text.split()) <= 4


def test_a_message_the_provider_cut_is_not_interrupted() -> None:
    """`response.done` incomplete after 1.0 s of audio, all of it played: the caller heard
    everything there is; the provider cut it, not the caller."""
    outcome = MessageOutcome(
        "a", "full", 1000, 1000, ANSWER, audio_complete=False, cut_by="provider"
    )
    result = settle_response(ResponseOutcome("r", (AnnouncedItem("a", "message"),), (outcome,)))
    (item,) = result.items
    assert isinstance(item, MessageItem)
    assert not item.interrupted and item.cut_by == "provider"
    assert item.to_json()["cut_by"] == "provider"
    assert result.ops == (Truncate("a", 1000),)  # the provider drops its look-ahead words


def test_the_measured_speaking_rate_places_the_words() -> None:
    """The same cut at a fast voice's rate keeps the words that voice really said."""
    slow = MessageOutcome("a", "full", 1000, 1000, ANSWER, audio_complete=False, cut_by="provider")
    fast = MessageOutcome(
        "a", "full", 1000, 1000, ANSWER, audio_complete=False, cut_by="provider", ms_per_char=40
    )
    kept = [
        settle_response(ResponseOutcome("r", (AnnouncedItem("a", "message"),), (o,))).items[0]
        for o in (slow, fast)
    ]
    texts = [item.text for item in kept if isinstance(item, MessageItem)]
    assert len(texts[1]) > len(texts[0]) and texts[1].startswith(texts[0])
