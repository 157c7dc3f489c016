"""Gemini: the heard checkpoint of a fully played response costs no task.

The runtime checks the provider's memory against the heard history each time no response is
left in flight. When every word was heard the plan is empty, and the Gemini session decides
that synchronously (`sync_history_nowait`), as the OpenAI one does: no `resync-history` task
at a boundary many sessions reach together (#17), no note, no re-seed, and the service's
memory is what the caller heard. A barge-in still re-seeds through the awaited path
(test_conformance_barge_in.py).
"""

from __future__ import annotations

from task_support import created_tasks

from .gemini_harness import gemini_harness

ANSWER = "Your order has shipped and should arrive on Thursday afternoon."
SCENARIO = {
    "server": {"script_scope": "server"},
    "responses": [
        {"user_transcript": "Where is my order?", "say": ANSWER},
        {"user_transcript": "Thanks.", "say": "You are welcome."},
    ],
}


async def test_played_responses_resync_without_a_task() -> None:
    async with gemini_harness(SCENARIO) as h:
        with created_tasks() as tasks:
            await h.hear_reply("Where is my order?", 0)
            await h.hear_reply("Thanks.", 1)
        assert [t.get_name() for t in tasks if "resync" in t.get_name()] == []
        assert (h.provider.reseeds, h.provider.corrections) == (0, 0)
        assert [text for role, text in h.service_texts() if role == "model"] == [
            ANSWER,
            "You are welcome.",
        ]
        assert h.local_texts()[-2:] == h.service_texts()[-2:]
