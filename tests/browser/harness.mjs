// The browser half of tests/tests/browser.rs: Debian's Chromium driven by playwright-core,
// pages served from 127.0.0.1 only, rrweb from the viewer's npm install.
//
//   node harness.mjs record --out DIR [--checkout-ms N]   record a scripted session, cut it into chunks
//   node harness.mjs replay --session FILE --live FILE     replay a stitched session to its end, compare
//   node harness.mjs viewer --url URL --guid GUID --shot PNG   the viewer plays a session
//   node harness.mjs console --url URL --guid GUID --expect N  its console panel and markers
//   node harness.mjs playback --url URL --guid GUID --at FRAC|end --dom FILE [--play-ms N --shot PNG]
//        the viewer opens a segmented session progressively (first frame, JS heap), seeks
//   node harness.mjs reference --url URL --guid GUID --at FRAC|end --dom FILE [--whole 1]
//        rrweb's Replayer over the session's single file, to the same time
//   node harness.mjs filters --url URL          the list's filter inputs
//   node harness.mjs redacted --plain FILE --redacted FILE --live HTML --expect JSON --rules JSON
//                                                     replay both, compare with the live DOM masked by the rules
//
// Each prints one JSON object on stdout; the Rust test makes the assertions.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const rrwebDist = resolve(process.env.RRWEB_DIST || join(here, "../../viewer/node_modules/rrweb/dist"));
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

function args() {
  const out = {};
  const argv = process.argv.slice(3);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const types = { ".html": "text/html", ".js": "text/javascript", ".cjs": "text/javascript", ".css": "text/css", ".json": "application/json" };

/** Serves `routes` (path → file or string) and /vendor/rrweb/* on 127.0.0.1:0. */
async function serve(routes) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    let body = null;
    let type = "text/plain";
    if (path.startsWith("/vendor/rrweb/")) {
      const file = normalize(join(rrwebDist, path.slice("/vendor/rrweb/".length)));
      if (file.startsWith(rrwebDist)) {
        try {
          body = readFileSync(file);
          type = types[extname(file)] || "application/octet-stream";
        } catch {}
      }
    } else if (path in routes) {
      const r = routes[path];
      body = r.file ? readFileSync(r.file) : r.text;
      type = r.type;
    }
    if (body === null) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": type }).end(body);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

async function browser() {
  const profile = mkdtempSync(join(tmpdir(), "rrstitch-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1024, height: 768 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Console warnings and errors and uncaught exceptions of a page: any of them fails a check. */
function watch(page) {
  const problems = [];
  page.on("console", (m) => {
    // The replay iframe is sandboxed without allow-scripts, so Chromium notes each recorded
    // <script> it refuses to run: that is rrweb's protection working, not a fault.
    if (/^Blocked script execution in .* the document's frame is sandboxed/.test(m.text())) return;
    if (m.type() === "warning" || m.type() === "error") problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}

// Runs in the page: a line per element of <body>, in document order: tag, attributes, own
// text, and form state (value, checked). Left out, on both sides, are what rrweb's Replayer
// changes on purpose: scripts (never run in the replay), a textarea's text child, the ":hover" class it puts on the
// element under the recorded pointer, autocomplete="off" it sets on form fields, and the
// value/checked/selected attributes (form state is compared as properties instead).
const SUMMARIZE = `(doc) => {
  const lines = [];
  const skip = new Set(["value", "checked", "selected", "autocomplete"]);
  const walk = (el, depth) => {
    if (["SCRIPT", "NOSCRIPT"].includes(el.tagName)) return;
    const attrs = [...el.attributes].filter((a) => !skip.has(a.name))
      .map((a) => [a.name, a.name === "class" ? a.value.split(/\\s+/).filter((c) => c && c !== ":hover").join(" ") : a.value])
      .filter(([name, value]) => !(name === "class" && value === ""))
      .map(([name, value]) => name + "=" + JSON.stringify(value)).sort().join(" ");
    // A textarea's text child is only its default value (a full snapshot's rebuild writes the
    // current value there); what it holds is compared as .value below.
    const text = el.tagName === "TEXTAREA" ? "" : [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).filter(Boolean).join(" ");
    let state = "";
    if (el.tagName === "INPUT") state = " value=" + JSON.stringify(el.value) + " checked=" + el.checked;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") state = " value=" + JSON.stringify(el.value);
    // What a select shows is its chosen option's text.
    if (el.tagName === "SELECT") state += " shows=" + JSON.stringify(el.selectedIndex < 0 ? "" : el.options[el.selectedIndex].text);
    lines.push("  ".repeat(depth) + el.tagName + (attrs ? " [" + attrs + "]" : "") + (text ? " " + JSON.stringify(text) : "") + state);
    for (const c of el.children) walk(c, depth + 1);
  };
  walk(doc.body, 0);
  return lines;
}`;

const pause = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** rrweb timestamps (ms) → an upload-time object name, microseconds, +0000. */
function chunkName(ms) {
  const iso = new Date(ms).toISOString(); // 2026-11-23T04:50:00.123Z
  return `${iso.slice(0, 19)}.${iso.slice(20, 23)}000+0000.json`;
}

async function record({ out, "checkout-ms": checkoutMs, guid }) {
  const { server, base } = await serve({ "/page.html": { file: join(here, "page.html"), type: "text/html" } });
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(`${base}/page.html`);
    await page.addScriptTag({ url: "/vendor/rrweb/rrweb.umd.min.cjs" });
    await page.evaluate((checkout) => {
      window.__events = [];
      const options = { emit: (e) => window.__events.push(e) };
      if (checkout) options.checkoutEveryNms = checkout;
      window.__stop = rrweb.record(options);
      let n = 0;
      rrweb.record.addCustomEvent("marker", { n: n++ });
      window.__markers = setInterval(() => rrweb.record.addCustomEvent("marker", { n: n++ }), 250);
    }, checkoutMs ? Number(checkoutMs) : 0);

    // The scripted user: typing, a list that grows and shrinks, style changes, scrolling.
    await page.type("#name", "Ada Lovelace", { delay: 30 });
    await page.type("#notes", "leave at the door\nring twice", { delay: 20 });
    await page.selectOption("#size", "l");
    await page.check("#gift");
    for (let i = 0; i < 5; i++) {
      await page.click("#add");
      await pause(120);
    }
    await page.click("#remove");
    await page.click("#remove");
    await page.click("#toggle");
    await page.mouse.wheel(0, 1400);
    await pause(400);
    for (let i = 0; i < 3; i++) {
      await page.click("#add");
      await pause(150);
    }
    await page.click("#toggle");
    await page.click("#toggle");
    await page.fill("#name", "");
    await page.type("#name", "Grace Hopper", { delay: 30 });
    await page.click("#remove");
    await page.mouse.wheel(0, -900);
    await pause(700);

    const { events, live } = await page.evaluate(`(() => {
      clearInterval(window.__markers);
      window.__stop();
      return { events: window.__events, live: (${SUMMARIZE})(document) };
    })()`);

    // Cut into chunks the way an SDK uploads: a chunk per ~600 ms of events, named by the
    // time it would have been uploaded (just after its last event).
    const chunksDir = join(out, "chunks");
    mkdirSync(chunksDir, { recursive: true });
    const chunks = [];
    let current = [];
    for (const e of events) {
      if (current.length && e.timestamp - current[0].timestamp > 600) {
        chunks.push(current);
        current = [];
      }
      current.push(e);
    }
    if (current.length) chunks.push(current);
    let last = 0;
    const names = [];
    for (const c of chunks) {
      const at = Math.max(c[c.length - 1].timestamp + 50, last + 1);
      last = at;
      const name = chunkName(at);
      names.push(name);
      writeFileSync(join(chunksDir, name), JSON.stringify({ session_guid: guid, session_data: c, environment: "browser-test" }));
    }
    writeFileSync(join(out, "live.json"), JSON.stringify(live, null, 1));
    const markers = events.filter((e) => e.type === 5 && e.data.tag === "marker").length;
    const fullSnapshots = events.filter((e) => e.type === 2).length;
    console.log(JSON.stringify({ chunks: names, events: events.length, markers, fullSnapshots, problems }));
  } finally {
    await b.close();
    server.close();
  }
}

async function replay({ session, live }) {
  const page_html = `<!doctype html><html><head><meta charset="utf-8">
    <link rel="stylesheet" href="/vendor/rrweb/style.css"></head><body><div id="root"></div>
    <script src="/vendor/rrweb/rrweb.umd.min.cjs"></script></body></html>`;
  const { server, base } = await serve({
    "/replay.html": { text: page_html, type: "text/html" },
    "/session.json": { file: session, type: "application/json" },
  });
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(`${base}/replay.html`);
    const result = await page.evaluate(`(async () => {
      const stitched = await (await fetch("/session.json")).json();
      const events = stitched.rrweb_data;
      const markers = events.filter((e) => e.type === 5 && e.data.tag === "marker").map((e) => e.data.payload.n);
      const replayer = new rrweb.Replayer(events, { root: document.getElementById("root"), showWarning: true });
      const total = replayer.getMetaData().totalTime;
      // rrweb applies the events strictly before the target: one past the end applies them all.
      replayer.pause(total + 1);
      await new Promise((ok) => setTimeout(ok, 300));
      const doc = replayer.iframe.contentDocument;
      const dom = doc && doc.body ? (${SUMMARIZE})(doc) : [];
      return { markers, total, dom, metadata: stitched.metadata };
    })()`);
    const want = JSON.parse(readFileSync(live, "utf8"));
    const mismatches = [];
    const n = Math.max(want.length, result.dom.length);
    for (let i = 0; i < n; i++) {
      if (want[i] !== result.dom[i]) mismatches.push({ line: i, live: want[i] ?? null, replayed: result.dom[i] ?? null });
    }
    // Markers are numbered from 0 every 250 ms: any number missing is a lost stretch of events.
    const seen = new Set(result.markers);
    const max = result.markers.length ? Math.max(...result.markers) : -1;
    const missing = [];
    for (let i = 0; i <= max; i++) if (!seen.has(i)) missing.push(i);
    console.log(JSON.stringify({
      ok: mismatches.length === 0 && problems.length === 0 && missing.length === 0 && result.markers.length > 0,
      mismatches: mismatches.slice(0, 20),
      mismatch_count: mismatches.length,
      problems: problems.slice(0, 20),
      markers: { count: result.markers.length, max, missing },
      total_ms: result.total,
      dom_lines: result.dom.length,
      replayable: result.metadata.replayable,
    }));
  } finally {
    await b.close();
    server.close();
  }
}

// Runs in the page: masks a document as the redaction rules say the stored session is masked
// (rrweb's own defaults: a value becomes one * per character, text keeps its whitespace), so
// the expected DOM is derived from the live one independently of the Rust code.
const MASK = `(doc, rules) => {
  const value = (s) => "*".repeat([...s].length);
  const text = (s) => s.replace(/\\S/gu, "*");
  const fields = ["INPUT", "TEXTAREA", "SELECT", "OPTION"];
  const maskValue = (el) => {
    if (el.tagName === "OPTION") el.setAttribute("value", value(el.value));
    else if (el.tagName !== "SELECT") el.value = value(el.value);
  };
  if (rules.mask_inputs) {
    // Options first: a select's value is then its selected option's masked value. An
    // option's text is the choice a select shows: masked as a value too.
    for (const el of doc.querySelectorAll("option")) {
      maskValue(el);
      el.text = value(el.text);
    }
    const labels = ":not([type=button i]):not([type=submit i]):not([type=reset i])";
    for (const el of doc.querySelectorAll("input" + labels + ", textarea")) maskValue(el);
  }
  const attrs = (rules.mask || []).flatMap((m) => m.attributes || []);
  for (const rule of rules.mask || []) {
    for (const root of doc.querySelectorAll(rule.selector)) {
      const walker = doc.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (n.parentElement && n.parentElement.tagName !== "STYLE") n.textContent = text(n.textContent);
      }
      for (const el of [root, ...root.querySelectorAll("*")]) {
        for (const a of attrs) if (el.hasAttribute(a)) el.setAttribute(a, value(el.getAttribute(a)));
        if (!rules.mask_inputs && fields.includes(el.tagName)) maskValue(el);
      }
    }
  }
}`;

/** Lines of `a` and `b` that differ. */
function differences(a, b) {
  const out = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) out.push({ line: i, want: a[i] ?? null, got: b[i] ?? null });
  }
  return out;
}

/**
 * The live page's final DOM (the fixture's HTML with its recorded form state), plain and
 * masked by `rules`; both stitched sessions replayed to their end. The unredacted replay must
 * equal the plain DOM (so the comparison works at all), the redacted one the masked DOM, and
 * the two expected DOMs must differ (so the masking is visible).
 */
async function redacted({ plain, redacted: masked, live, expect, rules }) {
  const page_html = `<!doctype html><html><head><meta charset="utf-8">
    <link rel="stylesheet" href="/vendor/rrweb/style.css"></head><body><div id="root"></div>
    <script src="/vendor/rrweb/rrweb.umd.min.cjs"></script></body></html>`;
  const { server, base } = await serve({
    "/replay.html": { text: page_html, type: "text/html" },
    "/live.html": { file: live, type: "text/html" },
    "/plain.json": { file: plain, type: "application/json" },
    "/redacted.json": { file: masked, type: "application/json" },
  });
  const facts = JSON.parse(readFileSync(expect, "utf8")).facts;
  const ruleSet = JSON.parse(readFileSync(rules, "utf8"));
  const b = await browser();
  try {
    const livePage = await b.context.newPage();
    await livePage.goto(`${base}/live.html`);
    const want = await livePage.evaluate(`((facts, rules) => {
      for (const f of facts) {
        const el = document.querySelector(f.selector);
        if (f.check === "value") el.value = f.expected;
        if (f.check === "checked") el.checked = f.expected;
      }
      const plain = (${SUMMARIZE})(document);
      (${MASK})(document, rules);
      return { plain, masked: (${SUMMARIZE})(document) };
    })(${JSON.stringify(facts)}, ${JSON.stringify(ruleSet)})`);
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(`${base}/replay.html`);
    const replay = async (file) => page.evaluate(`(async () => {
      const events = (await (await fetch("/${file}")).json()).rrweb_data;
      document.getElementById("root").replaceChildren();
      const replayer = new rrweb.Replayer(events, { root: document.getElementById("root"), showWarning: true });
      replayer.pause(replayer.getMetaData().totalTime + 1);
      await new Promise((ok) => setTimeout(ok, 300));
      const doc = replayer.iframe.contentDocument;
      return doc && doc.body ? (${SUMMARIZE})(doc) : [];
    })()`);
    const gotPlain = await replay("plain.json");
    const gotMasked = await replay("redacted.json");
    // A masked number field's value (`**`) is no number: Chromium says so and empties the
    // field, on the live page masked in JS as in the replay. Any other warning still fails.
    const expected = /^console\.warning: The specified value "\*+" cannot be parsed, or is out of range\.$/;
    const unexpected = problems.filter((p) => !expected.test(p));
    const plainDiff = differences(want.plain, gotPlain);
    const maskedDiff = differences(want.masked, gotMasked);
    const maskingVisible = differences(want.plain, want.masked).length;
    console.log(JSON.stringify({
      ok: plainDiff.length === 0 && maskedDiff.length === 0 && maskingVisible > 0 && unexpected.length === 0 && gotMasked.length > 0,
      plain_mismatches: plainDiff.slice(0, 20),
      masked_mismatches: maskedDiff.slice(0, 20),
      masked_lines_expected: maskingVisible,
      dom_lines: gotMasked.length,
      problems: unexpected.slice(0, 20),
      masked_dom: gotMasked,
      plain_dom: gotPlain,
    }));
  } finally {
    await b.close();
    server.close();
  }
}

async function viewer({ url, guid, shot }) {
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(`${url}?session=${encodeURIComponent(guid)}`);
    await page
      .waitForFunction(() => window.rrstitchViewer && window.rrstitchViewer.replayer, null, { timeout: 15000 })
      .catch((e) => {
        throw new Error(`the viewer never started a replay: ${e.message}; page said: ${problems.join("; ")}`);
      });
    const rows = await page.locator("#sessions tr").count();
    await pause(2000);
    const state = await page.evaluate(() => {
      const r = window.rrstitchViewer.replayer;
      const doc = r.iframe.contentDocument;
      return {
        current_ms: r.getCurrentTime(),
        replayed_elements: doc && doc.body ? doc.body.querySelectorAll("*").length : 0,
        clock: document.getElementById("clock").textContent,
        title: document.getElementById("title").textContent,
      };
    });
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({
      ok: problems.length === 0 && rows > 0 && state.replayed_elements > 0 && state.current_ms > 0,
      rows, problems, ...state,
    }));
  } finally {
    await b.close();
  }
}

/** The session time `at` names: a fraction of the duration, or "end" (past the last event). */
function targetMs(at, total) {
  return at === "end" ? total + 1 : Math.floor(Number(at) * total);
}

/**
 * Heap of the page's V8 isolate (the replay iframe shares it) through CDP, sampled every
 * 100 ms until stopped: the maximum is what the test bounds.
 */
async function heapSampler(context, page) {
  const cdp = await context.newCDPSession(page);
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { usedSize } = await cdp.send("Runtime.getHeapUsage");
        samples.push(usedSize);
      } catch {}
      await pause(100);
    }
  })();
  return {
    samples,
    max: () => Math.max(0, ...samples),
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The viewer opens a segmented session: first frame, heap while loading and playing, a seek. */
async function playback({ url, guid, at, dom: domFile, "play-ms": playMs, shot, speed }) {
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    const heap = await heapSampler(b.context, page);
    await page.goto(`${url}?session=${encodeURIComponent(guid)}`);
    await page
      .waitForFunction(() => window.rrstitchViewer && window.rrstitchViewer.firstFrameAt, null, { timeout: 30000 })
      .catch((e) => {
        throw new Error(`no first frame: ${e.message}; page said: ${problems.join("; ")}`);
      });
    const first = await page.evaluate(() => {
      const v = window.rrstitchViewer;
      const doc = v.replayer.iframe.contentDocument;
      return {
        mode: v.mode,
        opened_ms: v.openedAt,
        first_frame_ms: v.firstFrameAt - v.openedAt,
        first_frame_since_navigation_ms: v.firstFrameAt,
        elements: doc && doc.body ? doc.body.querySelectorAll("*").length : 0,
        total_ms: v.player.total,
      };
    });
    // Let it play and load in the background (at `speed`, to cross window restarts).
    if (speed) await page.evaluate((s) => window.rrstitchViewer.player.setConfig({ speed: Number(s) }), speed);
    await pause(Number(playMs || 0));
    const played = await page.evaluate(() => ({
      current_ms: window.rrstitchViewer.player.currentTime(),
      progress: window.rrstitchViewer.progress(),
      loading_line: document.getElementById("loading").textContent,
    }));
    const heapLoading = heap.max();
    if (shot) {
      mkdirSync(dirname(shot), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });
    }
    // The seek: back to normal speed, paused at the target.
    const target = targetMs(at, first.total_ms);
    const t0 = Date.now();
    await page.evaluate(async (t) => {
      const v = window.rrstitchViewer;
      v.player.setConfig({ speed: 1 });
      await v.seek(t, false);
    }, target);
    const seekMs = Date.now() - t0;
    await pause(500);
    const seen = await page.evaluate(`(() => {
      const v = window.rrstitchViewer;
      const doc = v.replayer.iframe.contentDocument;
      return { dom: doc && doc.body ? (${SUMMARIZE})(doc) : [], progress: v.progress(), current_ms: v.player.currentTime() };
    })()`);
    await heap.stop();
    writeFileSync(domFile, JSON.stringify(seen.dom, null, 1));
    console.log(JSON.stringify({
      ok: problems.length === 0 && first.elements > 0,
      problems: problems.slice(0, 20),
      ...first,
      played,
      heap_max_loading_mb: +(heapLoading / 2 ** 20).toFixed(1),
      heap_max_mb: +(heap.max() / 2 ** 20).toFixed(1),
      heap_samples: heap.samples.length,
      target_ms: target,
      seek_ms: seekMs,
      after_seek: { progress: seen.progress, current_ms: seen.current_ms },
      dom_lines: seen.dom.length,
    }));
  } finally {
    await b.close();
  }
}

/**
 * The reference: rrweb's Replayer over the whole single file (`/api/sessions/{guid}`), paused
 * at the same session time. With `--whole 1` every checkout after the first is dropped, so
 * the reference truly replays every incremental event from the start, not from rrweb's own
 * nearest checkout.
 */
async function reference({ url, guid, at, dom: domFile, whole }) {
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    const base = new URL(url);
    // A blank page of the viewer's origin (so the session fetch is same-origin); Chromium
    // asks that origin for a favicon it does not serve.
    await page.route("**/favicon.ico", (r) => r.fulfill({ status: 204 }));
    await page.goto(`${base.origin}/vendor/rrweb/style.css`);
    await page.setContent(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body><div id="root"></div></body></html>`);
    await page.addScriptTag({ url: `${base.origin}/vendor/rrweb/rrweb.umd.min.cjs` });
    const t0 = Date.now();
    const result = await page.evaluate(
      `(async () => {
        const stitched = await (await fetch(${JSON.stringify(`${base.origin}/api/sessions/${encodeURIComponent(guid)}`)})).json();
        let events = stitched.rrweb_data;
        const checkouts = events.filter((e) => e.type === 4).length;
        if (${whole ? "true" : "false"}) {
          let metas = 0, fulls = 0;
          events = events.filter((e) => (e.type !== 4 || metas++ === 0) && (e.type !== 2 || fulls++ === 0));
        }
        const start = stitched.metadata.first_event_timestamp;
        const total = stitched.metadata.last_event_timestamp - start;
        const at = ${JSON.stringify(at)};
        const target = at === "end" ? total + 1 : Math.floor(Number(at) * total);
        const replayer = new rrweb.Replayer(events, { root: document.getElementById("root"), showWarning: true });
        // Session time → this Replayer's time (its clock starts at its first event).
        replayer.pause(start + target - replayer.getMetaData().startTime);
        await new Promise((ok) => setTimeout(ok, 300));
        const doc = replayer.iframe.contentDocument;
        return { dom: doc && doc.body ? (${SUMMARIZE})(doc) : [], target, total, events: events.length, checkouts };
      })()`,
    );
    writeFileSync(domFile, JSON.stringify(result.dom, null, 1));
    // For comparison with the viewer's bound: the heap holding the whole session at once.
    const cdp = await b.context.newCDPSession(page);
    const { usedSize } = await cdp.send("Runtime.getHeapUsage");
    console.log(JSON.stringify({
      heap_mb: +(usedSize / 2 ** 20).toFixed(1),
      ok: problems.length === 0,
      problems: problems.slice(0, 20),
      target_ms: result.target,
      total_ms: result.total,
      events: result.events,
      checkouts: result.checkouts,
      dom_lines: result.dom.length,
      replay_ms: Date.now() - t0,
    }));
  } finally {
    await b.close();
  }
}

/**
 * The list's filters: for each case (values for the guid, URL, environment, min and max
 * duration inputs), the guids left in the table; and each row's warnings cell.
 */
async function filters({ url, cases }) {
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll("#sessions tr").length > 0, null, { timeout: 15000 });
    const results = [];
    for (const c of JSON.parse(cases)) {
      await page.fill("#f-guid", c.guid ?? "");
      await page.fill("#f-url", c.url ?? "");
      await page.selectOption("#f-env", c.env ?? "");
      await page.fill("#f-min", c.min ?? "");
      await page.fill("#f-max", c.max ?? "");
      results.push(await page.$$eval("#sessions tr", (trs) => trs.map((tr) => tr.dataset.guid).sort()));
    }
    for (const id of ["#f-guid", "#f-url", "#f-min", "#f-max"]) await page.fill(id, "");
    await page.selectOption("#f-env", "");
    const environments = await page.$$eval("#f-env option", (os) => os.map((o) => o.value).filter(Boolean));
    // Expanding a warnings cell shows its texts and does not open the session.
    const warnings = await page.$$eval("#sessions tr", (trs) => trs.map((tr) => {
      const details = tr.querySelector("td.warnings details");
      return {
        guid: tr.dataset.guid,
        count: details ? Number(details.querySelector("summary").textContent) : Number(tr.querySelector("td.warnings").textContent),
        texts: details ? [...details.querySelectorAll("li")].map((li) => li.textContent) : [],
        title: details ? details.title : "",
      };
    }));
    const withWarnings = warnings.find((w) => w.count > 0);
    let opened = null;
    if (withWarnings) {
      await page.click(`#sessions tr[data-guid="${withWarnings.guid}"] td.warnings summary`);
      opened = await page.evaluate(() => ({ player_shown: !document.getElementById("player").hidden }));
    }
    console.log(JSON.stringify({ ok: problems.length === 0, problems, results, environments, warnings, opened }));
  } finally {
    await b.close();
  }
}

/**
 * The viewer's console panel and timeline markers for session `guid`: every entry listed,
 * the level filter, and a click on the error seeking the (paused) replay to it.
 */
async function consolePanel({ url, guid, expect }) {
  const b = await browser();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await page.goto(`${url}?session=${encodeURIComponent(guid)}`);
    await page.waitForFunction(() => window.rrstitchViewer && window.rrstitchViewer.replayer, null, { timeout: 15000 });
    await page
      .waitForFunction((n) => document.querySelectorAll("#console-entries li").length >= n, Number(expect), { timeout: 15000 })
      .catch((e) => {
        throw new Error(`the console panel never listed ${expect} entries: ${e.message}; page said: ${problems.join("; ")}`);
      });
    const listed = () =>
      page.$$eval("#console-entries li", (lis) =>
        lis.map((li) => ({ level: li.className, text: li.textContent, timestamp: Number(li.dataset.timestamp) })));
    const entries = await listed();
    await page.click("#play"); // pause, so the seek below is where the replay stays
    await page.selectOption("#c-level", "error");
    const errors = await listed();
    await page.click("#console-entries li.error");
    await pause(1500);
    const state = await page.evaluate(() => ({
      current_ms: window.rrstitchViewer.player.currentTime(),
      markers: [...document.querySelectorAll("#markers span")].map((s) => s.className),
      count: document.getElementById("console-count").textContent,
    }));
    console.log(JSON.stringify({ ok: problems.length === 0, problems, entries, errors, ...state }));
  } finally {
    await b.close();
  }
}

const commands = { record, replay, viewer, redacted, playback, reference, filters, console: consolePanel };
const command = commands[process.argv[2]];
if (!command) {
  console.error(`usage: node harness.mjs ${Object.keys(commands).join("|")} …`);
  process.exit(2);
}
command(args()).catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
