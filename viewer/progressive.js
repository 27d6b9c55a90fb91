// Progressive playback of a segmented session (README "Segmented output"): a manifest plus gzip
// segments of rrweb events, served by `rrstitch view` under /api/sessions/{guid}/.
//
// Why a window, and why restarts: rrweb's Replayer keeps every event it was ever given (it
// needs them to seek back), so feeding it a whole 200 MB session costs around a gigabyte of
// heap. Here one Replayer covers a *window* of segments that begins at a seekable segment
// (its first two events are a checkout: Meta + FullSnapshot). Segments are appended with
// `addEvent` while less than AHEAD_BYTES of event JSON lies ahead of the segment playing (or
// less than LOOKAHEAD_MS of playback). Once more than BEHIND_BYTES lies behind it and
// playback has entered a later seekable segment, the Replayer is rebuilt from that segment,
// reusing the segments already parsed: the checkout rebuilds the same DOM, the old Replayer
// and the events behind become garbage, and the heap is bounded by the window (about
// AHEAD_BYTES + BEHIND_BYTES + a segment), not by the session. A seek does the same from the
// last seekable segment at or before the target, loading the segments up to the target
// before positioning there.
"use strict";

/** Event JSON loaded ahead of the segment playing. */
const AHEAD_BYTES = 10 * 1024 * 1024;
/** Event JSON kept behind it before the window moves to a later checkout. */
const BEHIND_BYTES = 6 * 1024 * 1024;
/** Keep at least this much playback time loaded ahead, whatever the budget says. */
const LOOKAHEAD_MS = 20_000;

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Whether segments' events can start a Replayer: two events at least, one a FullSnapshot. */
const startable = (parts) => parts.reduce((n, p) => n + p.length, 0) >= 2 && parts.some((p) => p.some((e) => e.type === 2));

class ProgressivePlayer {
  /**
   * @param {object} o
   * @param {string} o.guid
   * @param {object} o.manifest  the session's manifest.json
   * @param {HTMLElement} o.root where the Replayer mounts
   * @param {object} o.config    rrweb Replayer options (speed, skipInactive, …)
   * @param {(p: object) => void} o.onProgress loading progress
   * @param {() => void} o.onFirstFrame  the first FullSnapshot is rebuilt
   * @param {(r: object) => void} o.onReplayer a new Replayer (resize and finish hooks)
   * @param {() => void} o.onEnd  playback reached the session's end
   */
  constructor(o) {
    Object.assign(this, o);
    this.segs = o.manifest.segments;
    const meta = o.manifest.metadata || {};
    this.start = meta.first_event_timestamp ?? this.segs[0].first_timestamp;
    const end = meta.last_event_timestamp ?? Math.max(...this.segs.map((s) => s.last_timestamp));
    this.total = Math.max(0, end - this.start);
    this.totalBytes = this.segs.reduce((n, s) => n + s.bytes, 0);
    this.replayer = null;
    this.playing = false;
    this.gen = 0; // bumped on every rebuild: stale loads notice and stop
    this.win = null; // { base, next, bytes }: segments base..next-1 are in the Replayer
    this.parts = new Map(); // segment index → its parsed events, for the window only
    this.fetched = { segments: 0, bytes: 0 }; // over the player's life, for the progress line
    this.firstFrameSeen = false;
    this.restarts = 0;
  }

  url(seg) {
    return `/api/sessions/${encodeURIComponent(this.guid)}/segments/${seg.path}`;
  }

  /** Segment `i`'s events: from the window if parsed already, else fetched. */
  async segment(i) {
    return this.parts.get(i) ?? this.fetchSegment(i);
  }

  async fetchSegment(i) {
    const res = await fetch(this.url(this.segs[i]));
    if (!res.ok) throw new Error(`segment ${i}: HTTP ${res.status}`);
    const events = await res.json();
    this.fetched.segments += 1;
    this.fetched.bytes += this.segs[i].bytes;
    return events;
  }

  /** The last seekable segment starting at or before `abs` (segment 0 if none is). */
  baseFor(abs) {
    let base = 0;
    for (let i = 0; i < this.segs.length; i++) {
      if (this.segs[i].first_timestamp > abs) break;
      if (this.segs[i].seekable) base = i;
    }
    return base;
  }

  /** Session time (ms from the first event) now playing. */
  currentTime() {
    const r = this.replayer;
    if (!r) return 0;
    return Math.min(this.total, r.getMetaData().startTime + r.getCurrentTime() - this.start);
  }

  progress() {
    const w = this.win;
    return {
      segments: this.segs.length,
      window_first: w ? w.base : 0,
      window_next: w ? w.next : 0,
      window_bytes: w ? w.bytes : 0,
      loaded_to_end: !!w && w.next >= this.segs.length,
      fetched_segments: this.fetched.segments,
      fetched_bytes: this.fetched.bytes,
      total_bytes: this.totalBytes,
      restarts: this.restarts,
    };
  }

  /**
   * Starts (or moves) playback at session time `t`; resolves once positioned there. rrweb
   * applies the events strictly before the target, so `total + 1` shows the final state.
   */
  async seek(t, play) {
    const abs = this.start + Math.max(0, Math.min(t, this.total + 1));
    const base = this.baseFor(abs);
    const w = this.win;
    const r = this.replayer;
    if (r && w && base >= w.base && (w.next >= this.segs.length || this.segs[w.next].first_timestamp > abs)) {
      // Everything up to the target is in this Replayer already: rrweb seeks itself (from
      // its own nearest checkout).
      const offset = Math.max(0, abs - r.getMetaData().startTime);
      this.playing = play;
      if (play) r.play(offset);
      else r.pause(offset);
      return;
    }
    await this.build(base, abs, play);
  }

  /**
   * A Replayer over segment `base` and every following segment that starts at or before
   * `abs`, positioned at `abs`; then loading continues in the background.
   */
  async build(base, abs, play) {
    const gen = ++this.gen;
    let last = base;
    while (last + 1 < this.segs.length && this.segs[last + 1].first_timestamp <= abs) last++;
    // Fetch in parallel, apply in order: the first frame waits for as little as possible.
    let next = last + 1;
    // Segments already parsed past the target stay in the new window too (a window move).
    while (this.parts.has(next) && this.win && next < this.win.next) next++;
    const parts = await Promise.all(
      Array.from({ length: next - base }, (_, k) => this.segment(base + k)),
    );
    if (gen !== this.gen) return;
    // rrweb needs two events and a FullSnapshot to start; a tiny byte cap can leave a Meta
    // alone in a segment. Take following segments until the Replayer has what it needs.
    while (next < this.segs.length && !startable(parts)) {
      parts.push(await this.segment(next++));
      if (gen !== this.gen) return;
    }
    this.parts = new Map(parts.map((events, k) => [base + k, events]));
    const events = parts.length === 1 ? parts[0] : parts.flat();
    this.teardown();
    const r = new rrweb.Replayer(events, { ...this.config, root: this.root });
    this.replayer = r;
    r.on("fullsnapshot-rebuilded", () => {
      if (!this.firstFrameSeen) {
        this.firstFrameSeen = true;
        this.onFirstFrame();
      }
    });
    r.on("finish", () => this.finished(gen));
    this.onReplayer(r);
    this.win = { base, next, bytes: parts.reduce((n, _, k) => n + this.segs[base + k].bytes, 0) };
    const offset = Math.max(0, abs - r.getMetaData().startTime);
    this.playing = play;
    if (play) r.play(offset);
    else r.pause(offset);
    this.onProgress(this.progress());
    this.pump(gen);
  }

  teardown() {
    if (!this.replayer) return;
    this.replayer.pause();
    this.replayer.destroy?.();
    this.replayer = null;
    this.root.textContent = "";
  }

  /** Appends the next segment to the current Replayer. */
  async append(gen) {
    const i = this.win.next;
    const events = await this.fetchSegment(i);
    if (gen !== this.gen) return;
    this.parts.set(i, events);
    const r = this.replayer;
    // Playback ran out of loaded events and rrweb stopped: resume once more are in.
    const stalled = this.playing && this.stalled;
    for (const e of events) r.addEvent(e);
    this.win.next = i + 1;
    this.win.bytes += this.segs[i].bytes;
    if (stalled) {
      this.stalled = false;
      r.play(r.getCurrentTime());
    }
    this.onProgress(this.progress());
  }

  /** The window's segment that is playing now. */
  playingSegment() {
    const abs = this.start + this.currentTime();
    let i = this.win.base;
    while (i + 1 < this.win.next && this.segs[i + 1].first_timestamp <= abs) i++;
    return i;
  }

  /** Event JSON in the window from segment `from` (inclusive) to `to` (exclusive). */
  bytesBetween(from, to) {
    let n = 0;
    for (let i = from; i < to; i++) n += this.segs[i].bytes;
    return n;
  }

  /** Background loading for generation `gen`, within the window's budget. */
  async pump(gen) {
    try {
      while (gen === this.gen) {
        if (this.win.next >= this.segs.length) {
          // Loaded to the end: only window moves are left to watch for.
          await sleep(250);
        } else {
          const cur = this.playingSegment();
          const loadedEnd = this.segs[this.win.next - 1].last_timestamp;
          const ahead = loadedEnd - (this.start + this.currentTime());
          if (this.bytesBetween(cur + 1, this.win.next) < AHEAD_BYTES || ahead < LOOKAHEAD_MS) {
            await this.append(gen);
          } else {
            await sleep(250);
          }
        }
        if (this.maybeMoveWindow(gen)) return;
      }
    } catch (e) {
      if (gen === this.gen) this.onError?.(e);
    }
  }

  /**
   * Too much behind and past a later checkout: rebuild from it (see the comment at the top).
   * Returns whether a rebuild started.
   */
  maybeMoveWindow(gen) {
    if (gen !== this.gen || !this.playing) return false;
    const cur = this.playingSegment();
    if (this.bytesBetween(this.win.base, cur) <= BEHIND_BYTES) return false;
    let to = -1;
    for (let i = this.win.base + 1; i <= cur; i++) if (this.segs[i].seekable) to = i;
    if (to < 0) return false;
    this.restarts += 1;
    this.build(to, this.start + this.currentTime(), true).catch((e) => this.onError?.(e));
    return true;
  }

  finished(gen) {
    if (gen !== this.gen) return;
    if (this.win.next < this.segs.length) {
      this.stalled = true; // the rest is still loading: append() resumes
      return;
    }
    this.playing = false;
    this.onEnd();
  }

  play() {
    const r = this.replayer;
    if (!r) return;
    const t = this.currentTime();
    if (t >= this.total) {
      this.seek(0, true);
      return;
    }
    this.playing = true;
    r.play(r.getCurrentTime());
  }

  pause() {
    this.playing = false;
    this.replayer?.pause();
  }

  setConfig(c) {
    Object.assign(this.config, c);
    this.replayer?.setConfig(c);
  }

  destroy() {
    this.gen++;
    this.teardown();
  }
}

window.ProgressivePlayer = ProgressivePlayer;
