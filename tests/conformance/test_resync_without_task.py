"""The re-sync at a response's end costs no task when the provider holds the heard history.

The runtime re-syncs the provider conversation each time no response is left in flight (a
checkpoint). Almost always the plan is empty: the OpenAI session decides that synchronously
(`sync_history_nowait`) and the turn driver starts no `resync-history` task (#17: one task
less per response, at a boundary many sessions reach together). The provider gets no
history operation and the history stays what the caller heard.
"""

from __future__ import annotations

from conformance_support import harness

from task_support import created_tasks

TEXT = "Your order has shipped and should arrive on Thursday afternoon."


async def test_a_settled_response_resyncs_without_a_task() -> None:
    scenario = {"responses": [{"say": TEXT}, {"say": "You are welcome."}]}
    async with harness(scenario) as h:
        with created_tasks() as tasks:
            await h.hear_reply("Where is my order?", 0)
            await h.hear_reply("Thanks.", 1)
        assert [t.get_name() for t in tasks if "resync" in t.get_name()] == []
        assert h.client_events("conversation.item.create") == []
        assert h.client_events("conversation.item.delete") == []
        assert [m.text for m in h.assistant_messages()] == [TEXT, "You are welcome."]
