"""The per-call item bound of a provider core (`ProviderLimits.max_call_items`), for every core.

Why: an item costs memory however empty it is (its entry in the core's tables, its account,
the runtime's history item), and no text or audio bound sees an empty one — a provider
announcing items without end, or sending content for ids it never announced, would grow a
call without limit. Past the bound the call ends: dropping items instead would break the
heard contract (the model would remember things the history lacks, or a re-sync would
re-create them).

Two kinds of count, one limit: `take` counts the items a core reports to the runtime (output
items, caller items) for the whole call — never given back, since the runtime's history keeps
them even when the provider deletes its copy; `check` bounds a table the core holds and
prunes itself (its mirror of the provider conversation, the running responses). Both are
asked where the entry would be made, deep in the handlers, and raise `OverItemBound`; the
core's dispatcher turns that into one fatal `ProviderError` (`item_error`: the same code and
shape for every provider).
"""

from __future__ import annotations

from typing import Any

from vocalis.providers.base import ErrorKind, ProviderError, ProviderLimits

ITEM_BUDGET_CODE = "item_budget"


class OverItemBound(Exception):
    """A core was about to track one item past `ProviderLimits.max_call_items`."""


def item_error(limit: int) -> ProviderError:
    """The one fatal error a core reports when its provider passes the item bound."""
    return ProviderError(
        ErrorKind.FATAL,
        f"the provider announced more than {limit} items "
        "(ProviderLimits.max_call_items); ending the call",
        ITEM_BUDGET_CODE,
    )


class ItemBound:
    """One call's item bound: checks, and the fatal error reported once however many items
    keep coming (events already in flight when the call ends are refused quietly)."""

    def __init__(self, limits: ProviderLimits) -> None:
        self.limit = limits.max_call_items
        # Items reported to the runtime so far in this call (across reconnects).
        self.taken = 0
        self._reported = False

    def take(self) -> None:
        """Count one more item of the call, or raise past the bound (nothing counted)."""
        if self.taken >= self.limit:
            raise OverItemBound
        self.taken += 1

    def check(self, held: int) -> None:
        """Before a table holding `held` entries gets one more: raise past the bound."""
        if held >= self.limit:
            raise OverItemBound

    def refused(self, out: list[Any]) -> None:
        """An item was refused: the call ends with `item_error` (appended once per call)."""
        if not self._reported:
            self._reported = True
            out.append(item_error(self.limit))
