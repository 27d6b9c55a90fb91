// rrstitch's session viewer: the list from /api/sessions, one session replayed with rrweb's
// own Replayer (window.rrweb, served from the npm package), small controls of our own.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { replayer: null, total: 0, timer: null, playing: false };

function fmtDuration(ms) {
  if (typeof ms !== "number") return "–";
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function loadList() {
  const res = await fetch("/api/sessions");
  if (!res.ok) throw new Error(`GET /api/sessions: ${res.status} ${await res.text()}`);
  const rows = await res.json();
  rows.sort((a, b) => (b.first_event_timestamp || 0) - (a.first_event_timestamp || 0));
  const body = $("sessions");
  body.textContent = "";
  for (const s of rows) {
    const tr = document.createElement("tr");
    tr.dataset.guid = s.session_guid;
    const started = s.first_event_timestamp ? new Date(s.first_event_timestamp).toISOString().replace("T", " ").slice(0, 19) : "–";
    const warnings = Array.isArray(s.warnings) ? s.warnings.length : 0;
    tr.append(
      cell(s.session_guid, "guid"),
      cell(s.environment ?? "–"),
      cell(started),
      cell(fmtDuration(s.duration_ms)),
      cell(String(s.event_count ?? "–")),
      cell(String(s.chunk_count ?? "–")),
      cell(s.replayable ? "yes" : "no", s.replayable ? "" : "no"),
      cell(String(warnings)),
    );
    tr.addEventListener("click", () => open(s.session_guid));
    body.append(tr);
  }
  $("status").textContent = rows.length ? `${rows.length} session(s); click one to replay it` : "no stitched sessions here";
  return rows;
}

function stop() {
  if (state.timer) cancelAnimationFrame(state.timer);
  state.timer = null;
  if (state.replayer) {
    state.replayer.pause();
    state.replayer.destroy?.();
  }
  state.replayer = null;
  $("stage").textContent = "";
}

function tick() {
  const r = state.replayer;
  if (!r) return;
  const now = Math.min(r.getCurrentTime(), state.total);
  $("timeline").value = String(Math.floor(now));
  $("clock").textContent = `${fmtDuration(now)} / ${fmtDuration(state.total)}`;
  state.timer = requestAnimationFrame(tick);
}

function setPlaying(playing) {
  state.playing = playing;
  $("play").textContent = playing ? "Pause" : "Play";
}

async function open(guid) {
  stop();
  for (const tr of document.querySelectorAll("tbody tr")) tr.classList.toggle("current", tr.dataset.guid === guid);
  const res = await fetch(`/api/sessions/${encodeURIComponent(guid)}`);
  if (!res.ok) throw new Error(`GET session ${guid}: ${res.status}`);
  const session = await res.json();
  const meta = session.metadata || {};
  $("player").hidden = false;
  $("title").textContent = `${guid} · ${meta.environment ?? ""} · ${meta.event_count ?? session.rrweb_data.length} events · ${(meta.urls || []).join(" ")}`;
  const warnings = $("warnings");
  warnings.textContent = "";
  for (const w of meta.warnings || []) {
    const li = document.createElement("li");
    li.textContent = typeof w === "string" ? w : JSON.stringify(w);
    warnings.append(li);
  }
  if (!meta.replayable) {
    const li = document.createElement("li");
    li.textContent = "not replayable: no Meta and FullSnapshot before the first incremental event";
    warnings.append(li);
  }
  const r = new rrweb.Replayer(session.rrweb_data, {
    root: $("stage"),
    skipInactive: $("skip").checked,
    speed: Number($("speed").value),
    mouseTail: false,
    showWarning: true,
  });
  state.replayer = r;
  state.total = r.getMetaData().totalTime;
  $("timeline").max = String(Math.max(0, Math.floor(state.total)));
  r.on("finish", () => setPlaying(false));
  // Scale the recorded viewport into the stage.
  r.on("resize", ({ width, height }) => fit(width, height));
  r.play(0);
  setPlaying(true);
  tick();
  window.rrstitchViewer = { guid, replayer: r };
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
  const r = state.replayer;
  if (!r) return;
  if (state.playing) {
    r.pause();
    setPlaying(false);
  } else {
    const at = r.getCurrentTime();
    r.play(at >= state.total ? 0 : at);
    setPlaying(true);
  }
});
$("timeline").addEventListener("input", (e) => {
  const r = state.replayer;
  if (!r) return;
  const to = Number(e.target.value);
  if (state.playing) r.play(to); else r.pause(to);
});
$("speed").addEventListener("change", (e) => state.replayer?.setConfig({ speed: Number(e.target.value) }));
$("skip").addEventListener("change", (e) => state.replayer?.setConfig({ skipInactive: e.target.checked }));

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
