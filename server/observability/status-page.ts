/**
 * The live status page served at `GET /` on the metrics port: plain HTML,
 * CSS and JS with inline SVG charts, nothing fetched from elsewhere. It polls
 * `/status.json` every second and keeps the last 120 points in the browser.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tiercache status</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
  body { margin: 0; padding: 1.2rem 1.6rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; }
  h1 small { font-weight: normal; color: #667; font-size: .85rem; margin-left: .6rem; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: .8rem; margin-bottom: 1rem; }
  .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .7rem .9rem; }
  .card .label { color: #667; font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 1.5rem; white-space: nowrap; font-variant-numeric: tabular-nums; margin: .2rem 0; }
  .card svg { width: 100%; height: 40px; display: block; }
  .bar { height: 8px; background: #e6e9ee; border-radius: 4px; overflow: hidden; }
  .bar div { height: 100%; background: #3d7be0; width: 0; }
  .ok { color: #1b7f3b; } .bad { color: #c0262d; } .warn { color: #b26a00; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde1e7; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: .35rem .6rem; border-bottom: 1px solid #eef0f3; font-size: .9rem; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #f0f2f5; font-weight: 600; }
  #error { color: #c0262d; margin: .5rem 0; }
  #methods-table { width: auto; min-width: 320px; }
</style>
</head>
<body>
<h1>tiercache <small id="subtitle">connecting…</small></h1>
<div id="error" hidden></div>
<div class="cards">
  <div class="card"><div class="label">Ready</div><div class="value" id="ready">–</div><div id="ready-reason"></div></div>
  <div class="card"><div class="label">Requests / s</div><div class="value" id="rps">–</div><div>errors / s: <span id="eps">–</span></div><svg id="rps-chart" viewBox="0 0 120 40" preserveAspectRatio="none"></svg></div>
  <div class="card"><div class="label">Hit ratio</div><div class="value" id="hit-ratio">–</div><svg id="hit-chart" viewBox="0 0 120 40" preserveAspectRatio="none"></svg></div>
  <div class="card"><div class="label">Latency p50 / p99</div><div class="value"><span id="p50">–</span> / <span id="p99">–</span></div><svg id="latency-chart" viewBox="0 0 120 40" preserveAspectRatio="none"></svg></div>
  <div class="card"><div class="label">Memory used / budget</div><div class="value" id="memory">–</div><div class="bar"><div id="memory-bar"></div></div></div>
  <div class="card"><div class="label">Durable tier</div><div class="value" id="storage">–</div><div>breaker: <span id="breaker">–</span></div><div id="durable-size"></div></div>
  <div class="card"><div class="label">Calls since start</div><div class="value" id="requests-total">–</div><div>errors: <span id="errors-total">–</span></div></div>
</div>
<table>
  <thead><tr><th>namespace</th><th>entries</th><th>bytes</th><th>hits</th><th>misses</th><th>hit ratio</th><th>sets</th><th>degraded writes</th></tr></thead>
  <tbody id="namespaces"></tbody>
</table>
<p id="namespaces-note"></p>
<table id="methods-table">
  <thead><tr><th>method</th><th>calls</th><th>errors</th></tr></thead>
  <tbody id="methods"></tbody>
</table>
<script>
"use strict";
const POINTS = 120;
const history = { rps: [], hit: [], p50: [], p99: [] };
const $ = (id) => document.getElementById(id);
const fmtBytes = (n) => { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : String(n)) + " " + u[i]; };
const fmtSeconds = (s) => s === null ? "–" : s < 0.001 ? (s * 1e6).toFixed(0) + " µs" : s < 1 ? (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + " ms" : s.toFixed(2) + " s";
const fmtRatio = (r) => r === null ? "–" : (r * 100).toFixed(1) + " %";
const fmtRate = (r) => r === null ? "–" : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US");
function push(list, v) { list.push(v); if (list.length > POINTS) list.shift(); }
function line(svg, series, colors, max) {
  const top = max ?? Math.max(1e-9, ...series.flat().filter((v) => v !== null));
  svg.replaceChildren(...series.map((points, k) => {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    // Newest point at the right edge; at least 30 slots wide so that a young chart does not stretch.
    const slots = Math.max(30, points.length), offset = slots - points.length, step = 120 / (slots - 1);
    path.setAttribute("points", points.map((v, i) => v === null ? "" : ((offset + i) * step).toFixed(2) + "," + (39 - (v / top) * 37).toFixed(2)).filter(Boolean).join(" "));
    path.setAttribute("fill", "none"); path.setAttribute("stroke", colors[k]); path.setAttribute("stroke-width", "1.5"); path.setAttribute("vector-effect", "non-scaling-stroke");
    return path;
  }));
}
function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
function render(s) {
  $("subtitle").textContent = "up " + s.uptimeSeconds + " s · " + new Date(s.time).toLocaleTimeString() + (s.windowSeconds ? " · rates over " + s.windowSeconds.toFixed(1) + " s" : "");
  $("ready").textContent = s.ready.ready ? "ready" : "not ready";
  $("ready").className = "value " + (s.ready.ready ? "ok" : "bad");
  $("ready-reason").textContent = s.ready.reason ?? "";
  $("rps").textContent = fmtRate(s.requestsPerSecond);
  $("eps").textContent = fmtRate(s.errorsPerSecond);
  $("eps").className = s.errorsPerSecond ? "bad" : "";
  $("hit-ratio").textContent = fmtRatio(s.hitRatio);
  $("p50").textContent = fmtSeconds(s.latency.p50);
  $("p99").textContent = fmtSeconds(s.latency.p99);
  $("memory").textContent = fmtBytes(s.memory.usedBytes) + (s.memory.budgetBytes ? " / " + fmtBytes(s.memory.budgetBytes) : " (no budget)");
  $("memory-bar").style.width = s.memory.budgetBytes ? Math.min(100, (100 * s.memory.usedBytes) / s.memory.budgetBytes).toFixed(1) + "%" : "0";
  $("storage").textContent = s.storage;
  $("breaker").textContent = s.breaker || "n/a";
  $("breaker").className = s.breaker === "open" ? "bad" : s.breaker === "half-open" ? "warn" : "ok";
  $("durable-size").textContent = s.durable ? s.durable.entries.toLocaleString("en-US") + " entries, " + fmtBytes(s.durable.bytes) : "";
  $("requests-total").textContent = s.totals.requests.toLocaleString("en-US");
  $("errors-total").textContent = s.totals.errors.toLocaleString("en-US");
  push(history.rps, s.requestsPerSecond); push(history.hit, s.hitRatio); push(history.p50, s.latency.p50); push(history.p99, s.latency.p99);
  line($("rps-chart"), [history.rps], ["#3d7be0"]);
  line($("hit-chart"), [history.hit], ["#1b7f3b"], 1);
  line($("latency-chart"), [history.p50, history.p99], ["#3d7be0", "#c0262d"]);
  $("namespaces").replaceChildren(...s.namespaces.map((ns) => {
    const tr = document.createElement("tr");
    tr.dataset.namespace = ns.namespace;
    const reads = ns.hits + ns.misses;
    tr.append(cell(ns.namespace), cell(String(ns.entries)), cell(fmtBytes(ns.bytes)), cell(String(ns.hits)), cell(String(ns.misses)), cell(reads ? fmtRatio(ns.hits / reads) : "–"), cell(String(ns.sets)), cell(String(ns.degradedWrites)));
    return tr;
  }));
  $("methods").replaceChildren(...s.methods.filter((m) => m.total > 0).map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.method = m.method;
    tr.append(cell(m.method), cell(m.total.toLocaleString("en-US")), cell(m.errors.toLocaleString("en-US")));
    return tr;
  }));
  $("namespaces-note").textContent = s.namespacesHeld > s.namespaces.length ? "showing the " + s.namespaces.length + " busiest of " + s.namespacesHeld + " namespaces" : "";
}
async function poll() {
  try {
    const res = await fetch("status.json", { cache: "no-store" });
    if (!res.ok) throw new Error("status.json: HTTP " + res.status);
    render(await res.json());
    $("error").hidden = true;
  } catch (err) {
    $("error").hidden = false;
    $("error").textContent = "cannot reach the server: " + err.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
`;
