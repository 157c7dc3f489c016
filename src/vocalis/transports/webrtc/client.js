// vocalis WebRTC client: the playground page's call over an RTCPeerConnection.
//
// `new VocalisWebRTC(token)` is shaped like the WebSocket the page otherwise opens (readyState,
// send(text), close(), onopen/onmessage/onclose with string messages), so the page renders
// both transports with the same code. Underneath:
// - the microphone goes out as a WebRTC track (echo cancellation, noise suppression, AGC on);
// - the agent's Opus track plays through an <audio> element, the output the browser's echo
//   canceller uses as its reference;
// - one ordered data channel carries the JSON messages both ways;
// - the playback clock of the heard contract: every ~50 ms the page reports the RTP timestamp
//   of the last frame its receiver played from a real packet
//   (RTCRtpReceiver.getSynchronizationSources()). Concealment of lost or late packets does not
//   move it, so invented audio is never reported as heard;
// - barge-in: on `clear {rtp}` the page mutes at once (what the jitter buffer still holds of
//   the cut message is never heard), answers `cleared` with its position at that moment, and
//   unmutes once playout reaches `rtp` (from there on the stream is silence or a new message).
(() => {
  "use strict";
  const CONFIG = JSON.parse(document.currentScript.dataset.config || "{}");
  const OFFER_PATH = CONFIG.offerPath || "webrtc/offer";
  const POLL_MS = 10;
  const REPORT_MS = 50;
  const GATHER_TIMEOUT_MS = 3000;
  const HALF = 2 ** 31;
  // a at or after b on the wrapping 32-bit RTP clock
  const atOrAfter = (a, b) => ((a - b) >>> 0) < HALF;
  // `?meta.name=value` in the page URL reaches the application as the call's metadata.
  const pageMetadata = () => {
    const metadata = {};
    for (const [k, v] of new URLSearchParams(location.search)) {
      if (k.startsWith("meta.")) metadata[k.slice(5)] = v;
    }
    return metadata;
  };

  class VocalisWebRTC {
    constructor(token) {
      this.readyState = 0;  // WebSocket.CONNECTING
      this.binaryType = "arraybuffer";
      this.onopen = this.onmessage = this.onclose = null;
      // Read by tests and for diagnostics: segment ids and starts (n -> id, n -> rtp), the
      // last played timestamp and every barge-in (the position reported, the stop position).
      this.state = { ids: {}, starts: {}, lastRtp: null, clears: [] };
      this.muted = false;
      this.unmuteAt = null;
      this.lastReport = 0;
      this.pc = this.dc = this.receiver = this.mic = this.timer = null;
      this.audio = new Audio();
      this.audio.autoplay = true;
      window.vocalisWebRTC = this;
      this.connect(token).catch((err) => this.finish(String(err && err.message || err)));
    }

    async connect(token) {
      const pc = this.pc = new RTCPeerConnection({ iceServers: CONFIG.iceServers || [] });
      const dc = this.dc = pc.createDataChannel("vocalis", { ordered: true });
      try {
        this.mic = await navigator.mediaDevices.getUserMedia({ audio: {
          channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
        pc.addTrack(this.mic.getAudioTracks()[0], this.mic);
      } catch (err) {
        // No microphone (permission denied, no device): listen only; typed messages still work.
        document.body.dataset.mic = "denied";
        pc.addTransceiver("audio", { direction: "recvonly" });
      }
      const track = new Promise((resolve) => {
        pc.ontrack = (e) => {
          this.receiver = e.receiver;
          this.audio.srcObject = new MediaStream([e.track]);
          resolve();
        };
      });
      const opened = new Promise((resolve) => { dc.onopen = resolve; });
      dc.onclose = () => this.finish("data channel closed");
      dc.onmessage = (e) => this.receive(e.data);
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") this.finish("connection failed");
      };
      await pc.setLocalDescription(await pc.createOffer());
      await this.gathered();
      const response = await fetch(OFFER_PATH + "?token=" + encodeURIComponent(token), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
      });
      if (!response.ok) throw new Error((await response.text()).trim() || "offer refused");
      await pc.setRemoteDescription(await response.json());
      await Promise.all([track, opened]);
      await this.audio.play().catch(() => {});  // the Start click allows autoplay
      this.readyState = 1;  // WebSocket.OPEN
      if (this.onopen) this.onopen({});
      this.timer = setInterval(() => this.poll(), POLL_MS);
      this.send(JSON.stringify({ type: "ready", transport: "webrtc", metadata: pageMetadata() }));
      document.body.dataset.audio = "ready";
      document.body.dataset.call = "ready";
    }

    gathered() {
      // The answer carries the server's candidates; ours go in the offer (no trickle ICE).
      const pc = this.pc;
      if (pc.iceGatheringState === "complete") return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
        pc.addEventListener("icegatheringstatechange", done);
        setTimeout(resolve, GATHER_TIMEOUT_MS);  // a slow STUN/TURN server: go with what we have
      });
    }

    played() {
      // RTP timestamp of the last frame played from a received packet (null before the first).
      const sources = this.receiver ? this.receiver.getSynchronizationSources() : [];
      return sources.length && sources[0].rtpTimestamp !== undefined ? sources[0].rtpTimestamp : null;
    }

    poll() {
      const rtp = this.played();
      if (rtp !== null) {
        this.state.lastRtp = rtp;
        if (this.muted && this.unmuteAt !== null && atOrAfter(rtp, this.unmuteAt)) {
          this.muted = this.audio.muted = false;
          this.unmuteAt = null;
        }
      }
      const now = performance.now();
      if (this.state.lastRtp !== null && now - this.lastReport >= REPORT_MS) {
        this.lastReport = now;
        this.send(JSON.stringify({ type: "pos", rtp: this.state.lastRtp }));
      }
    }

    receive(raw) {
      let m = null;
      try { m = JSON.parse(raw); } catch (e) { return; }
      if (m.type === "clear") this.flush(m.rtp);
      else if (m.type === "segment") this.state.ids[m.n] = m.id;
      else if (m.type === "start") {
        this.state.starts[m.n] = m.rtp;
        if (this.muted && this.unmuteAt === null) this.unmuteAt = m.rtp;
      }
      if (this.onmessage) this.onmessage({ data: raw });
    }

    flush(stopRtp) {
      // Barge-in: mute now; the stream carries no more of the cut message after stopRtp.
      this.muted = this.audio.muted = true;
      this.unmuteAt = typeof stopRtp === "number" ? stopRtp : null;
      const rtp = this.played();
      const at = rtp === null ? this.state.lastRtp : rtp;
      this.state.clears.push({ rtp: at, stop: this.unmuteAt });
      this.send(JSON.stringify({ type: "cleared", rtp: at }));
    }

    send(text) {
      if (this.dc && this.dc.readyState === "open") this.dc.send(text);
    }

    close(code, reason) { this.finish(reason || ""); }

    finish(reason) {
      if (this.readyState === 3) return;
      this.readyState = 3;  // WebSocket.CLOSED
      if (this.timer) clearInterval(this.timer);
      if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
      if (this.pc) this.pc.close();
      this.audio.srcObject = null;
      if (this.onclose) this.onclose({ code: 1000, reason });
    }
  }

  window.VocalisWebRTC = VocalisWebRTC;
})();
