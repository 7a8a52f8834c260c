// One WebRTC connection to one other phone, whatever it carries: a call's media
// and file channel (calls.js), one file sent outside a call (transfer.js), a chat
// with no box at all (direct.js). Like PairDrop's RTCPeer, the caller says how
// signals travel and what goes on the connection; negotiating it is done here.
//
// Perfect negotiation (the W3C WebRTC spec's pattern): either side may offer at
// any time; when two offers cross, the polite side rolls back and takes the
// other's, the impolite side ignores the other's. A connection that fails
// restarts ICE (Wi-Fi gone long enough for ICE to give up); `disconnected` is
// usually a short hiccup that ICE gets over by itself, so it is only reported.
// Signals are handled one at a time in arrival order, and candidates wait for
// their description in both directions: ours are sent after it, theirs that
// come first are kept until a description is in.

export class Peer {
  /**
   * @param {object} options
   * @param {(data: object) => void} options.signal sends {description} or {candidate} to the other side
   * @param {boolean} options.polite on crossed offers, roll back ours and take theirs
   * @param {boolean} [options.offerer=true] false: the other side offers first; negotiate only after that
   * @param {RTCIceServer[]} [options.iceServers=[]]
   * @param {boolean} [options.trickle=true] false: no candidates of their own, each description
   *   carries them all (for codes copied by hand)
   * @param {boolean} [options.iceRestart=true] restart ICE when the connection fails
   * @param {(pc: RTCPeerConnection) => void} [options.setup] adds tracks and channels; runs again
   *   when the connection is made anew
   * @param {(state: string) => void} [options.onState] new, connecting, connected, disconnected, failed, closed
   * @param {(ev: RTCTrackEvent) => void} [options.onTrack]
   * @param {(channel: RTCDataChannel) => void} [options.onChannel] a channel the other side made
   */
  constructor(options) {
    this.options = {offerer: true, iceServers: [], trickle: true, iceRestart: true, ...options};
    this.queue = Promise.resolve();
    this.closed = false;
    this.open();
  }

  /** The connection state; older Safari has only the ICE state, which tells the same story. */
  get state() {
    const pc = this.pc;
    if (pc.connectionState !== undefined) return pc.connectionState;
    return {checking: 'connecting', completed: 'connected'}[pc.iceConnectionState] || pc.iceConnectionState;
  }

  open() {
    const o = this.options;
    const pc = new RTCPeerConnection({iceServers: o.iceServers});
    this.pc = pc;
    this.gotRemote = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.early = []; // their candidates that came before any description
    this.held = null; // our candidates, while a description of ours is on its way out
    this.holding = 0;
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onicecandidate = ({candidate}) => {
      if (!candidate || !o.trickle) return;
      if (this.held) this.held.push(candidate.toJSON());
      else o.signal({candidate: candidate.toJSON()});
    };
    if (o.onTrack) pc.ontrack = o.onTrack;
    if (o.onChannel) pc.ondatachannel = (ev) => o.onChannel(ev.channel);
    pc.onconnectionstatechange = () => this.changed(pc);
    pc.oniceconnectionstatechange = () => {
      if (pc.connectionState === undefined) this.changed(pc);
    };
    if (o.setup) o.setup(pc);
  }

  changed(pc) {
    if (pc !== this.pc || this.closed) return;
    const s = this.state;
    if (s === 'failed' && this.options.iceRestart) this.restartIce();
    if (this.options.onState) this.options.onState(s);
  }

  /** Gather fresh candidates and renegotiate (after a failure or a network change). */
  restartIce() {
    if (typeof this.pc.restartIce === 'function') this.pc.restartIce();
  }

  async negotiate() {
    if (!this.options.offerer && !this.gotRemote) return; // the other side makes the first offer
    const pc = this.pc;
    this.hold();
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
    } catch (err) {
      this.release(pc);
      console.warn('negotiation', err);
      return;
    } finally {
      this.makingOffer = false;
    }
    await this.sendDescription(pc);
  }

  /** Send our description (the offer or answer just set), then the candidates that waited for it. */
  async sendDescription(pc) {
    if (!this.options.trickle) await gathered(pc);
    if (pc === this.pc && !this.closed) this.options.signal({description: pc.localDescription.toJSON()});
    this.release(pc);
  }

  hold() {
    this.holding += 1;
    if (!this.held) this.held = [];
  }

  release(pc) {
    if (pc !== this.pc || --this.holding > 0) return;
    const held = this.held || [];
    this.held = null;
    if (!this.closed) for (const candidate of held) this.options.signal({candidate});
  }

  /** A signal from the other side. Handled after the ones before it; the promise says how it went. */
  receive(data) {
    const step = this.queue.then(() => this.apply(data || {}));
    this.queue = step.catch(() => {});
    return step;
  }

  async apply({description, candidate}) {
    if (this.closed) return;
    if (description) {
      const offer = description.type === 'offer';
      const collision = offer && (this.makingOffer || this.pc.signalingState !== 'stable');
      this.ignoreOffer = !this.options.polite && collision;
      if (this.ignoreOffer) return;
      try {
        await this.pc.setRemoteDescription(description); // a polite side's own offer is rolled back
      } catch (err) {
        if (!offer) throw err;
        // The other side started over (it reloaded the page, say): so do we.
        this.reopen();
        await this.pc.setRemoteDescription(description);
      }
      this.gotRemote = true;
      const pc = this.pc;
      if (offer) {
        this.hold();
        try {
          await pc.setLocalDescription();
        } catch (err) {
          this.release(pc);
          throw err;
        }
        await this.sendDescription(pc);
      }
      await this.addEarly();
    } else if (candidate) {
      if (!this.pc.remoteDescription) {
        if (!this.ignoreOffer) this.early.push(candidate);
        return;
      }
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        if (!this.ignoreOffer) throw err; // a candidate of an offer we ignored
      }
    }
  }

  async addEarly() {
    const early = this.early;
    this.early = [];
    for (const candidate of early) {
      await this.pc.addIceCandidate(candidate).catch((err) => console.warn('early candidate', err));
    }
  }

  reopen() {
    this.pc.close();
    this.open();
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}

/** Resolves once `pc` has gathered its candidates, or after 4 s (enough on a LAN). */
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 4000);
  });
}
