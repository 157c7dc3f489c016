"""SDP offer in, answer out, and the life of each WebRTC call. No HTTP here (see `http.py`).

Why it exists: a WebRTC call outlives the request that started it — the browser POSTs its
offer, gets the answer, and the call then runs on UDP (ICE, DTLS, SRTP, SCTP) for as long as
the caller stays. Something must own each peer connection from the offer to its close, count
it against the limits, and make sure nothing of it outlives `aclose()`. That is this class.

Limits (each call starts a paid realtime session, and each offer costs a UDP port and CPU):
- `max_sessions` calls at once, counted from the offer to the teardown (503 beyond it);
- `max_pending` handshakes at once (offers answered but not yet `ready`);
- `handshake_timeout_s` for ICE + DTLS + data channel + the page's `ready`;
- `idle_timeout_s` without any data channel message (a live page reports ~20 times a second);
- offers are bounded (`MAX_OFFER_BYTES`) and must carry an audio m-line and a data channel.

ICE: host candidates of every interface; `ice_servers` adds STUN (server-reflexive) and TURN
(relayed) candidates for servers behind NAT. With no servers configured none is contacted
(aiortc would otherwise default to a public STUN server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from vocalis.transports.webrtc.transport import WebRTCTransport
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = [
    "MAX_OFFER_BYTES",
    "IceServer",
    "OfferRefused",
    "OnWebRTCCall",
    "WebRTCEndpoint",
    "WebRTCLimits",
]

log = logging.getLogger("vocalis.transports.webrtc")

OnWebRTCCall = Callable[[WebRTCTransport], Awaitable[None]]

MAX_OFFER_BYTES = 64 * 1024
_ICE_SCHEMES = ("stun", "turn", "turns")
# How long the teardown waits for the data channel writer to send what the call queued.
_FLUSH_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server (`urls` like `stun:host:3478`, `turn:host:3478?transport=udp`)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    @classmethod
    def from_url(
        cls, url: str, *, username: str | None = None, credential: str | None = None
    ) -> IceServer:
        """A server from its URL; the credentials are kept for TURN only. ValueError says why
        a URL is refused."""
        scheme, _, rest = url.partition(":")
        if scheme not in _ICE_SCHEMES or not rest or any(c.isspace() for c in url):
            raise ValueError(f"not a STUN/TURN URL (stun:, turn: or turns:host[:port]): {url!r}")
        if scheme == "stun":
            return cls((url,))
        if username is None or credential is None:
            raise ValueError(f"TURN server {url!r} needs a username and a credential")
        return cls((url,), username, credential)

    def to_aiortc(self) -> RTCIceServer:
        return RTCIceServer(list(self.urls), self.username, self.credential)

    def to_browser(self) -> dict[str, object]:
        """The `RTCIceServer` dictionary for the page's `RTCPeerConnection`."""
        entry: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            entry["username"] = self.username
        if self.credential is not None:
            entry["credential"] = self.credential
        return entry


@dataclass(frozen=True, slots=True)
class WebRTCLimits:
    max_sessions: int | None = None
    max_pending: int = 16
    handshake_timeout_s: float = 15.0
    idle_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if self.max_pending < 1 or self.handshake_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("max_pending and the timeouts must be positive")


class OfferRefused(Exception):
    """The offer was not answered: `status` is the HTTP status, `message` one safe sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check_offer(offer: object) -> RTCSessionDescription:
    if not isinstance(offer, dict) or offer.get("type") != "offer":
        raise OfferRefused(400, "expected a JSON object with type 'offer' and an 'sdp'")
    sdp = offer.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferRefused(400, "'sdp' must be a session description")
    if len(sdp) > MAX_OFFER_BYTES:
        raise OfferRefused(413, f"the offer exceeds {MAX_OFFER_BYTES} bytes")
    media = [line.split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]
    if sorted(media) != ["m=application", "m=audio"]:
        # Exactly one of each: extra tracks (video above all) would cost decoding CPU.
        raise OfferRefused(400, "the offer needs one audio track and one data channel, no more")
    return RTCSessionDescription(sdp=sdp, type="offer")


class WebRTCEndpoint:
    """Answers offers and runs one `on_call(transport)` per connected peer."""

    def __init__(
        self,
        on_call: OnWebRTCCall,
        *,
        ice_servers: tuple[IceServer, ...] = (),
        limits: WebRTCLimits | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.on_call = on_call
        self.ice_servers = ice_servers
        self.limits = limits or WebRTCLimits()
        self.clock = clock or MonotonicClock()
        self._calls: set[asyncio.Task[None]] = set()
        self._pending = 0  # answered or being answered, not yet `ready`
        self._answering = 0  # offers being answered (not yet in `_calls`)
        self._closed = False
        self.refused = 0

    @property
    def live(self) -> int:
        """Calls from their offer (being answered counts) to their teardown."""
        return len(self._calls) + self._answering

    def _admit(self) -> None:
        limits = self.limits
        if self._closed:
            raise OfferRefused(503, "the server is shutting down")
        if limits.max_sessions is not None and self.live >= limits.max_sessions:
            raise OfferRefused(503, "too many calls at once; try again later")
        if self._pending >= limits.max_pending:
            raise OfferRefused(503, "too many calls connecting at once; try again later")

    async def answer(
        self,
        offer: object,
        *,
        on_end: Callable[[], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> dict[str, str]:
        """Answer a browser's offer (`{"type": "offer", "sdp": ...}`) and start its call.

        Raises `OfferRefused` (bad offer, limits). The answer carries every ICE candidate
        (gathering completes before it is returned), so the page needs no trickle ICE. Once
        answered, `on_end()` runs when the call has torn down (a fleet slot goes back) and
        `on_failure()` if `on_call` raised.
        """
        description = _check_offer(offer)
        try:
            self._admit()
        except OfferRefused:
            self.refused += 1
            raise
        config = RTCConfiguration(iceServers=[s.to_aiortc() for s in self.ice_servers])
        pc = RTCPeerConnection(config)
        transport = WebRTCTransport(self.clock)
        self._pending += 1
        self._answering += 1
        try:
            async with asyncio.timeout(self.limits.handshake_timeout_s):
                answer = await self._negotiate(pc, transport, description)
        except BaseException as exc:
            self._pending -= 1
            transport.hang_up()
            await pc.close()
            if isinstance(exc, TimeoutError):
                raise OfferRefused(504, "gathering ICE candidates timed out") from None
            if isinstance(exc, Exception):
                # aiortc's SDP parser is not built for hostile input: anything it raises on
                # an offer (ValueError, AssertionError, KeyError...) is the offer's fault.
                log.warning("webrtc: offer refused (%s)", type(exc).__name__)
                raise OfferRefused(400, "the offer cannot be answered (no Opus audio?)") from None
            raise
        finally:
            self._answering -= 1
        task = asyncio.get_running_loop().create_task(
            self._run_call(pc, transport, on_end, on_failure), name="vocalis-webrtc-call"
        )
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return answer

    async def _negotiate(
        self, pc: RTCPeerConnection, transport: WebRTCTransport, offer: RTCSessionDescription
    ) -> dict[str, str]:
        pc.on("datachannel", transport.attach_channel)
        pc.on("track", lambda track: self._on_track(transport, track))
        await pc.setRemoteDescription(offer)
        transport.sink.track.sender = pc.addTrack(transport.sink.track)
        opus = [
            c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/opus"
        ]
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.setCodecPreferences(opus)
        await pc.setLocalDescription(await pc.createAnswer())
        local = pc.localDescription
        if "opus/48000" not in local.sdp:
            raise ValueError("no Opus in the answer")
        return {"type": local.type, "sdp": local.sdp}

    def _on_track(self, transport: WebRTCTransport, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and transport.mic_task is None:
            transport.mic_task = asyncio.get_running_loop().create_task(
                transport.read_microphone(track), name="vocalis-webrtc-mic"
            )

    async def _run_call(
        self,
        pc: RTCPeerConnection,
        transport: WebRTCTransport,
        on_end: Callable[[], None] | None,
        on_failure: Callable[[], None] | None,
    ) -> None:
        """The call from its answer to its teardown; nothing of it outlives this task."""
        writer = asyncio.get_running_loop().create_task(
            transport.write_channel(), name="vocalis-webrtc-write"
        )

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                transport.hang_up()

        pc.on("connectionstatechange", on_state)
        try:
            try:
                ready = await self._wait_ready(transport)
            finally:
                self._pending -= 1
            if ready:
                await self._talk(transport)
        except Exception:
            log.exception("webrtc: the call failed")
            if on_failure is not None:
                on_failure()
        finally:
            try:
                await self._tear_down(pc, transport, writer)
            finally:
                if on_end is not None:
                    on_end()

    async def _talk(self, transport: WebRTCTransport) -> None:
        watchdog = asyncio.get_running_loop().create_task(
            self._watch_idle(transport), name="vocalis-webrtc-idle"
        )
        try:
            await self.on_call(transport)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _tear_down(
        self, pc: RTCPeerConnection, transport: WebRTCTransport, writer: asyncio.Task[None]
    ) -> None:
        transport.hang_up()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_TIMEOUT_S):
                await asyncio.shield(writer)  # the last verdicts and states reach the page
        await pc.close()
        for task in (writer, transport.mic_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _wait_ready(self, transport: WebRTCTransport) -> bool:
        ready = asyncio.ensure_future(transport.ready.wait())
        closed = asyncio.ensure_future(transport.wait_closed())
        try:
            await asyncio.wait(
                {ready, closed},
                timeout=self.limits.handshake_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
            closed.cancel()
        return transport.ready.is_set() and not transport.hung_up

    async def _watch_idle(self, transport: WebRTCTransport) -> None:
        limit = self.limits.idle_timeout_s
        while not transport.hung_up:
            deadline = transport.last_message_at + limit
            if self.clock.now() >= deadline:
                log.warning("webrtc: no message from the page for %.0f s; hanging up", limit)
                transport.hang_up()
                return
            await self.clock.sleep_until(deadline)

    async def aclose(self) -> None:
        """Refuse new offers, hang up every call and wait until each has torn down."""
        self._closed = True
        calls = list(self._calls)
        for task in calls:
            task.cancel()
        for task in calls:
            with contextlib.suppress(asyncio.CancelledError):
                await task
