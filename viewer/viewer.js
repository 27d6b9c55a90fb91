// rrstitch's session viewer: the list from /api/sessions (with filters), one session replayed
// with rrweb's own Replayer (window.rrweb, served from the npm package). A session with a
// manifest plays progressively through ProgressivePlayer (progressive.js); one without plays
// from its single stitched file as before.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { player: null, total: 0, timer: null, playing: false, rows: [] };

function fmtDuration(ms) {
  if (typeof ms !== "number") return "–";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

function fmtBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function warningText(w) {
  return typeof w === "string" ? w : JSON.stringify(w);
}

/** The warnings cell: the count, the texts on hover and in an expandable list. */
function warningsCell(warnings) {
  const td = cell("", "warnings");
  if (!warnings.length) {
    td.textContent = "0";
    return td;
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = String(warnings.length);
  details.title = warnings.map(warningText).join("\n");
  const ul = document.createElement("ul");
  for (const w of warnings) {
    const li = document.createElement("li");
    li.textContent = warningText(w);
    ul.append(li);
  }
  details.append(summary, ul);
  // Expanding the warnings must not open the session.
  details.addEventListener("click", (e) => e.stopPropagation());
  td.append(details);
  return td;
}

/** The rows the filter inputs let through. Durations are typed in seconds. */
function filtered(rows) {
  const guid = $("f-guid").value.trim().toLowerCase();
  const url = $("f-url").value.trim().toLowerCase();
  const env = $("f-env").value;
  const min = $("f-min").value === "" ? null : Number($("f-min").value) * 1000;
  const max = $("f-max").value === "" ? null : Number($("f-max").value) * 1000;
  return rows.filter((s) => {
    if (guid && !String(s.session_guid).toLowerCase().includes(guid)) return false;
    if (url && !(s.urls || []).some((u) => String(u).toLowerCase().includes(url))) return false;
    if (env && s.environment !== env) return false;
    const d = typeof s.duration_ms === "number" ? s.duration_ms : null;
    if (min !== null && (d === null || d < min)) return false;
    if (max !== null && (d === null || d > max)) return false;
    return true;
  });
}

function render() {
  const rows = filtered(state.rows);
  const body = $("sessions");
  body.textContent = "";
  const current = window.rrstitchViewer?.guid;
  for (const s of rows) {
    const tr = document.createElement("tr");
    tr.dataset.guid = s.session_guid;
    tr.classList.toggle("current", s.session_guid === current);
    const started = s.first_event_timestamp ? new Date(s.first_event_timestamp).toISOString().replace("T", " ").slice(0, 19) : "–";
    const warnings = Array.isArray(s.warnings) ? s.warnings : [];
    tr.append(
      cell(s.session_guid, "guid"),
      cell(s.environment ?? "–"),
      cell(started),
      cell(fmtDuration(s.duration_ms)),
      cell(String(s.event_count ?? "–")),
      cell(String(s.chunk_count ?? "–")),
      cell(s.replayable ? "yes" : "no", s.replayable ? "" : "no"),
      cell(s.manifest ? "segments" : "file"),
      warningsCell(warnings),
      cell((s.urls || []).join(" "), "urls"),
    );
    tr.addEventListener("click", () => open(s.session_guid));
    body.append(tr);
  }
  const n = state.rows.length;
  $("status").textContent = n
    ? `${rows.length} of ${n} session(s) shown; click one to replay it`
    : "no stitched sessions here";
}

async function loadList() {
  const res = await fetch("/api/sessions");
  if (!res.ok) throw new Error(`GET /api/sessions: ${res.status} ${await res.text()}`);
  const rows = await res.json();
  rows.sort((a, b) => (b.first_event_timestamp || 0) - (a.first_event_timestamp || 0));
  state.rows = rows;
  const env = $("f-env");
  const chosen = env.value;
  env.textContent = "";
  env.append(new Option("any", ""));
  for (const e of [...new Set(rows.map((r) => r.environment).filter((e) => typeof e === "string"))].sort()) {
    env.append(new Option(e, e));
  }
  env.value = chosen;
  render();
  return rows;
}

function stop() {
  if (state.timer) cancelAnimationFrame(state.timer);
  state.timer = null;
  state.player?.destroy();
  state.player = null;
  $("stage").textContent = "";
  $("loading").textContent = "";
  showConsole([], 0);
  $("markers").textContent = "";
}

function tick() {
  const p = state.player;
  if (!p) return;
  const now = Math.min(p.currentTime(), state.total);
  $("timeline").value = String(Math.floor(now));
  $("clock").textContent = `${fmtDuration(now)} / ${fmtDuration(state.total)}`;
  state.timer = requestAnimationFrame(tick);
}

function setPlaying(playing) {
  state.playing = playing;
  $("play").textContent = playing ? "Pause" : "Play";
}

function showMeta(guid, meta, eventCount) {
  $("player").hidden = false;
  $("title").textContent = `${guid} · ${meta.environment ?? ""} · ${meta.event_count ?? eventCount} events · ${(meta.urls || []).join(" ")}`;
  const warnings = $("warnings");
  warnings.textContent = "";
  for (const w of meta.warnings || []) {
    const li = document.createElement("li");
    li.textContent = warningText(w);
    warnings.append(li);
  }
  if (!meta.replayable) {
    const li = document.createElement("li");
    li.textContent = "not replayable: no Meta and FullSnapshot before the first incremental event";
    warnings.append(li);
  }
}

function replayerConfig() {
  return { skipInactive: $("skip").checked, speed: Number($("speed").value), mouseTail: false, showWarning: true };
}

/** A single stitched file behind the same small interface as ProgressivePlayer. */
class FilePlayer {
  constructor(events, root, config, onReplayer, onEnd) {
    this.replayer = new rrweb.Replayer(events, { ...config, root });
    this.total = this.replayer.getMetaData().totalTime;
    this.replayer.on("finish", onEnd);
    onReplayer(this.replayer);
  }
  currentTime() { return this.replayer.getCurrentTime(); }
  async seek(t, play) { if (play) this.replayer.play(t); else this.replayer.pause(t); }
  play() {
    const at = this.replayer.getCurrentTime();
    this.replayer.play(at >= this.total ? 0 : at);
  }
  pause() { this.replayer.pause(); }
  setConfig(c) { this.replayer.setConfig(c); }
  destroy() { this.replayer.pause(); this.replayer.destroy?.(); }
}

// The console panel and the timeline's markers. A segmented session's console entries come
// from the console.jsonl.gz its stitch extracted (the manifest's `console`); a single file's
// are read from its events here, by the same rule (README "Segmented output": level as the
// insights count it, the payload's strings joined by a space, cut to 3,000 characters).

const CONSOLE_PLUGIN = "rrweb/console@1";
const consoleView = { entries: [], start: 0 };

function consoleLevel(level) {
  if (level === "error" || level === "assert") return "error";
  if (level === "warn" || level === "countReset") return "warn";
  return "log";
}

function consoleFromEvents(events) {
  const out = [];
  for (const e of events) {
    if (e.type !== 6 || e.data?.plugin !== CONSOLE_PLUGIN) continue;
    const p = e.data.payload || {};
    const items = (p.payload || []).filter((x) => typeof x === "string").map((x) => [...x].slice(0, 3000).join(""));
    out.push({ timestamp: e.timestamp, level: consoleLevel(p.level), message: [...items.join(" ")].slice(0, 3000).join("") });
  }
  return out;
}

async function consoleFromManifest(guid, manifest) {
  if (!manifest.console) return [];
  const res = await fetch(`/api/sessions/${encodeURIComponent(guid)}/segments/${manifest.console.path}`);
  if (!res.ok) throw new Error(`console of ${guid}: HTTP ${res.status}`);
  return (await res.text()).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** Session time (ms from the first event) of a timestamp. */
function offset(timestamp) {
  return Math.max(0, timestamp - consoleView.start);
}

function seekTo(timestamp) {
  const p = state.player;
  if (!p) return;
  const t = offset(timestamp);
  $("timeline").value = String(Math.floor(t));
  p.seek(t, state.playing).catch((err) => console.error(err));
}

function showConsole(entries, start) {
  consoleView.entries = entries.slice().sort((a, b) => a.timestamp - b.timestamp);
  consoleView.start = start;
  renderConsole();
}

function renderConsole() {
  const level = $("c-level").value;
  const text = $("c-text").value.toLowerCase();
  const list = $("console-entries");
  list.textContent = "";
  let shown = 0;
  for (const e of consoleView.entries) {
    if (level && e.level !== level) continue;
    if (text && !e.message.toLowerCase().includes(text)) continue;
    const li = document.createElement("li");
    li.className = e.level;
    li.dataset.timestamp = String(e.timestamp);
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = fmtDuration(offset(e.timestamp));
    li.append(at, e.message);
    li.addEventListener("click", () => seekTo(e.timestamp));
    list.append(li);
    shown += 1;
  }
  const n = consoleView.entries.length;
  $("console-count").textContent = shown === n ? `${n}` : `${shown} of ${n}`;
}

function showMarkers(markers, start, total) {
  const bar = $("markers");
  bar.textContent = "";
  if (!(total > 0)) return;
  for (const m of markers || []) {
    const span = document.createElement("span");
    span.className = m.kind;
    span.title = `${m.kind.replace("_", " ")} at ${fmtDuration(m.timestamp - start)}`;
    span.style.left = `${Math.min(100, (100 * (m.timestamp - start)) / total)}%`;
    span.addEventListener("click", () => seekTo(m.timestamp));
    bar.append(span);
  }
}

/** The console panel and markers of a session, once its player knows the session's length. */
function showExtras(meta, entries, total) {
  const start = meta.first_event_timestamp ?? 0;
  showConsole(entries, start);
  showMarkers(meta.insights?.markers, start, total);
}

/** What tests and the console see: the open session, its player and timings. */
function expose(guid, mode, player, openedAt) {
  window.rrstitchViewer = {
    guid,
    mode,
    player,
    openedAt,
    firstFrameAt: null,
    get replayer() { return player.replayer; },
    progress: () => (player.progress ? player.progress() : null),
    seek: (t, play = false) => player.seek(t, play),
    console: () => consoleView.entries,
  };
}

function onReplayer(r) {
  // Scale the recorded viewport into the stage.
  r.on("resize", ({ width, height }) => fit(width, height));
}

function onEnd() {
  setPlaying(false);
}

async function open(guid) {
  stop();
  const openedAt = performance.now();
  for (const tr of document.querySelectorAll("tbody tr")) tr.classList.toggle("current", tr.dataset.guid === guid);
  const row = state.rows.find((r) => r.session_guid === guid);
  if (row && row.manifest) return openSegments(guid, openedAt);
  const res = await fetch(`/api/sessions/${encodeURIComponent(guid)}`);
  if (!res.ok) throw new Error(`GET session ${guid}: ${res.status}`);
  const session = await res.json();
  const meta = session.metadata || {};
  showMeta(guid, meta, session.rrweb_data.length);
  const p = new FilePlayer(session.rrweb_data, $("stage"), replayerConfig(), onReplayer, onEnd);
  expose(guid, "file", p, openedAt);
  p.replayer.on("fullsnapshot-rebuilded", () => {
    window.rrstitchViewer.firstFrameAt ??= performance.now();
  });
  start(p, true);
  showExtras(meta, consoleFromEvents(session.rrweb_data), p.total);
}

async function openSegments(guid, openedAt) {
  const res = await fetch(`/api/sessions/${encodeURIComponent(guid)}/manifest.json`);
  if (!res.ok) throw new Error(`GET manifest of ${guid}: ${res.status}`);
  const manifest = await res.json();
  showMeta(guid, manifest.metadata || {}, "?");
  const p = new ProgressivePlayer({
    guid,
    manifest,
    root: $("stage"),
    config: replayerConfig(),
    onProgress: showProgress,
    onFirstFrame: () => {
      window.rrstitchViewer.firstFrameAt ??= performance.now();
    },
    onReplayer,
    onEnd,
    onError: (e) => {
      $("loading").textContent = `loading failed: ${e.message}`;
      console.error(e);
    },
  });
  expose(guid, "segments", p, openedAt);
  state.player = p;
  state.total = p.total;
  $("timeline").max = String(Math.max(0, Math.floor(state.total)));
  await p.seek(0, true);
  setPlaying(true);
  tick();
  showExtras(manifest.metadata || {}, await consoleFromManifest(guid, manifest), p.total);
}

function showProgress(p) {
  $("loading").textContent =
    `segments ${p.window_first + 1}–${p.window_next} of ${p.segments} in memory` +
    ` (${fmtBytes(p.window_bytes)}); fetched ${p.fetched_segments} segment(s), ${fmtBytes(p.fetched_bytes)}` +
    ` of ${fmtBytes(p.total_bytes)}${p.loaded_to_end ? "; loaded to the end" : ""}`;
}

function start(p, play) {
  state.player = p;
  state.total = p.total;
  $("timeline").max = String(Math.max(0, Math.floor(state.total)));
  p.seek(0, play);
  setPlaying(play);
  tick();
}

function fit(width, height) {
  const stage = $("stage");
  const scale = Math.min(1, stage.clientWidth / width);
  const wrapper = stage.querySelector(".replayer-wrapper");
  if (wrapper) {
    wrapper.style.transformOrigin = "0 0";
    wrapper.style.transform = `scale(${scale})`;
  }
  stage.style.height = `${Math.ceil(height * scale)}px`;
}

$("play").addEventListener("click", () => {
  const p = state.player;
  if (!p) return;
  if (state.playing) {
    p.pause();
    setPlaying(false);
  } else {
    p.play();
    setPlaying(true);
  }
});
// Seeking: a segmented session rebuilds from the nearest checkout, so wait for the slider to
// settle ("change") rather than rebuilding on every "input" step of a drag.
$("timeline").addEventListener("change", (e) => {
  const p = state.player;
  if (!p) return;
  p.seek(Number(e.target.value), state.playing).catch((err) => console.error(err));
});
$("speed").addEventListener("change", (e) => state.player?.setConfig({ speed: Number(e.target.value) }));
$("skip").addEventListener("change", (e) => state.player?.setConfig({ skipInactive: e.target.checked }));
for (const id of ["f-guid", "f-url", "f-env", "f-min", "f-max"]) $(id).addEventListener("input", render);
for (const id of ["c-level", "c-text"]) $(id).addEventListener("input", renderConsole);

loadList()
  .then((rows) => {
    const wanted = new URLSearchParams(location.search).get("session");
    if (wanted) return open(wanted);
    if (rows.length === 1) return open(rows[0].session_guid);
  })
  .catch((e) => {
    $("status").textContent = String(e);
    console.error(e);
  });
