"""Conversation history items, the chat-context diff and the heard ledger (pure code, no I/O)."""

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    Role,
    history_to_json,
)

__all__ = [
    "ConversationItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "MessageItem",
    "Role",
    "history_to_json",
]
