"""Server frames decode exactly as the standard library's JSON decoder decodes them.

Why: with the ``fast`` extra, flat frames go through orjson, which differs from ``json`` at
the edges (lone surrogates, integers beyond 64 bits, ``1e400``, nesting depth). What reaches
the protocol core — the value, its types, or "not JSON" — must not depend on the backend, so
every test compares against the reference: ``json`` with ``NaN``/``Infinity`` refused.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vocalis.providers.openai.frames import decode_server_frame


def _reject(name: str) -> Any:
    raise ValueError(name)


def _reference(raw: str | bytes) -> Any | None:
    try:
        return json.loads(raw, parse_constant=_reject)
    except (ValueError, RecursionError):
        return None


def _same(raw: str | bytes) -> None:
    # repr tells 1 from 1.0 and True, -0.0 from 0.0, and shows key order.
    assert repr(decode_server_frame(raw)) == repr(_reference(raw))


_surrogate_escape = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson would make them floats
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),  # inf dumps as Infinity: refused both ways
    st.text(max_size=8),
    st.sampled_from(["audio delta", "{", "[", "\u2028", "\x7f", "é"]),
)
_flat = st.dictionaries(st.text(max_size=4), _scalars, max_size=6)
_nested = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
_JUNK = '{}[],:"\\ \t\n\r\x0b\x0c\xa0-+.eE09tfnNaIul/'


@st.composite
def _frames(draw: st.DrawFn) -> str:
    """Flat events (as dumped, or with raw text spliced in), nested ones, and mangled ones."""
    value = draw(st.one_of(_flat, _flat, st.dictionaries(st.text(max_size=3), _nested), _nested))
    text = list(json.dumps(value, ensure_ascii=draw(st.booleans())))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["junk", "surrogate", "number", "drop", "cut"]))
        if edit == "junk":
            text.insert(where, draw(st.sampled_from(_JUNK)))
        elif edit == "surrogate":
            text.insert(where, draw(_surrogate_escape))
        elif edit == "number":
            text.insert(where, draw(st.sampled_from(["1e400", "-0", "1" * 25, "-" + "9" * 20])))
        elif edit == "drop" and text:
            del text[min(where, len(text) - 1)]
        else:
            del text[where:]
    return "".join(text)


@settings(max_examples=600)
@given(_frames())
@example('{"a":"\\ud800"}')
@example('{"a":"\\udc00\\ud800","b":1}')
@example('{"a":18446744073709551616}')
@example('{"a":-9223372036854775809}')
@example('{"a":1e400}')
@example('{"a":NaN}')
@example('{"a":1,"b":2,"a":3}')
@example('{"a":1,}')
@example('\x0b{"a":1}')
@example('{"a":"\ud800"}')
@example("[" * 995 + "]" * 995)
@example('{"a":' + "[" * 995 + "]" * 995 + "}")
def test_decode_matches_the_standard_library(raw: str) -> None:
    _same(raw)
    _same(raw.encode("utf-8", "surrogatepass"))


@given(st.text(alphabet='{}[],:"\\ 0123456789.eE+-tfnrulsa\ud800', max_size=16))
def test_json_alphabet_soup_matches_the_standard_library(raw: str) -> None:
    _same(raw)


def test_a_delta_event_decodes_to_its_fields() -> None:
    event = {"type": "response.output_audio.delta", "item_id": "item_1", "output_index": 0}
    assert decode_server_frame(json.dumps(event, separators=(",", ":"))) == event
