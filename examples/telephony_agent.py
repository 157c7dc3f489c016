"""A phone agent for Twilio Media Streams.

`vocalis serve examples/telephony_agent.py:agent --twilio --port 8080` answers Twilio's
WebSocket (μ-law 8 kHz). Playback position comes from Twilio's `mark` acknowledgements, so
after a barge-in the history keeps exactly the words the caller heard on the phone.

`serve` prints the stream URL with its access token (`ws://HOST:PORT/twilio/TOKEN`). Twilio
only connects over TLS, so put vocalis behind a TLS proxy or tunnel and point a Twilio
number's voice webhook at TwiML with `wss://`, your public host and that token:

    <Response><Connect><Stream url="wss://YOUR-HOST/twilio/TOKEN" /></Connect></Response>

Pass the caller's number to the agent (a per-call factory or a tool reads
`CallInfo.caller`) with `<Parameter name="caller" value="{{From}}"/>` inside `<Stream>`.

Without a phone at hand, run the same agent offline on a recorded call:

    uv run python examples/make_caller_wav.py "I'd like to book a table for two" out/caller.wav
    uv run vocalis run examples/telephony_agent.py:agent --input out/caller.wav
"""

from __future__ import annotations

from vocalis import Agent, function_tool

_BOOKINGS: list[dict[str, object]] = []


@function_tool
def book_table(party_size: int, time: str) -> dict[str, object]:
    """Book a table at the restaurant.

    Args:
        party_size: Number of guests (1 to 12).
        time: Requested time, for example "19:30".
    """
    if not 1 <= party_size <= 12:
        return {"booked": False, "reason": "we take parties of 1 to 12"}
    booking = {"booked": True, "party_size": party_size, "time": time, "ref": len(_BOOKINGS) + 1}
    _BOOKINGS.append(booking)
    return booking


agent = Agent(
    instructions=(
        "You answer the phone for Chez Vocalis, a small restaurant. Greet briefly, help the "
        "caller book a table with book_table, confirm the time and party size, and keep every "
        "sentence short: this is a phone line."
    ),
    tools=[book_table],
    greeting="Chez Vocalis, good evening! How can I help?",
)
