"""The pure decision cores of the HTTP layer, property-tested (issue #14, items 3 and 4).

`HandshakeBook` decides which unfinished handshakes a listener keeps; `client_address` whose
rate limit a request spends. Both take plain data, so any sequence an attacker can produce is
a sequence hypothesis can produce.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vocalis.transports.web.headers import TrustedProxies, client_address
from vocalis.transports.web.limits import Admit, HandshakeBook

ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), ADDRESSES, st.booleans()),
        st.tuples(st.just("done"), st.integers(0, 200), st.booleans()),
    ),
    max_size=200,
)


@given(STEPS, st.integers(1, 5), st.integers(1, 12))
def test_the_book_never_holds_more_than_its_limits(
    steps: list[tuple[str, object, bool]], per_address: int, total: int
) -> None:
    book: HandshakeBook[int] = HandshakeBook(per_address, total)
    opened: list[int] = []  # keys in opening order
    live: dict[int, tuple[str, bool]] = {}
    for n, (action, arg, flag) in enumerate(steps):
        if action == "open":
            address, exempt = str(arg), flag
            before = book.pending(address)
            verdict, evicted = book.open(n, address, exempt=exempt)
            if verdict is Admit.REFUSE_ADDRESS:
                assert not exempt and before >= per_address and n not in book
                continue
            # The evicted are the oldest pending ones, and they are gone.
            oldest = [k for k in opened if k in live][: len(evicted)]
            assert evicted == oldest
            for key in evicted:
                live.pop(key)
                assert key not in book
            opened.append(n)
            live[n] = (address, exempt)
        else:
            key = int(str(arg))
            book.done(key)
            book.done(key)  # idempotent
            live.pop(key, None)
        assert book.pending() == len(live) <= total
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
            counted = sum(1 for a, _ in live.values() if a == address)
            assert book.pending(address) == counted
            limited = sum(1 for a, exempt in live.values() if a == address and not exempt)
            assert limited <= per_address


HOPS = st.lists(st.sampled_from(["1.1.1.1", "2.2.2.2", "10.0.0.5", "10.0.0.6"]), min_size=1)


@given(HOPS, st.sampled_from(["10.0.0.5", "192.0.2.7"]))
def test_the_client_is_the_rightmost_untrusted_hop(hops: list[str], peer: str) -> None:
    trusted = TrustedProxies(["10.0.0.0/24"])
    headers = [(b"x-forwarded-for", ", ".join(hops).encode())]
    client = client_address(peer, headers, trusted)
    if peer not in trusted:
        assert client == peer  # a direct client's own header is ignored
        return
    untrusted = [hop for hop in hops if hop not in trusted]
    assert client == (untrusted[-1] if untrusted else hops[0])
    # Whatever the client prepends, the hops its proxies appended decide.
    spoofed = [(b"x-forwarded-for", ", ".join(["9.9.9.9", *hops]).encode())]
    if untrusted:
        assert client_address(peer, spoofed, trusted) == client
