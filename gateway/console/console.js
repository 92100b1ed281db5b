// The migration console: polls /admin/status (the gateway: routes, ramps, shadow) and
// /admin/migration (the whole system: stage, extractions, events, read model, processes) once a
// second and redraws. No framework, no build.
"use strict";

const COLORS = ["#64748b", "#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2"];
const POLL_MS = 1000;
let token = sessionStorage.getItem("shopAdminToken") || "";
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) {
  token = fromHash;
  sessionStorage.setItem("shopAdminToken", token);
  history.replaceState(null, "", location.pathname);
}

const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
const ms = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} ms`);
const when = (t) => new Date(t * 1000).toLocaleTimeString();
const num = (v) => (v === null || v === undefined ? "–" : String(Math.round(v)));
const secs = (v) => {
  if (v === null || v === undefined) return "–";
  return v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`;
};

function colorOf(backends, name) {
  return COLORS[Math.max(0, backends.indexOf(name)) % COLORS.length];
}

function bar(parts, backends) {
  const cells = parts
    .filter(([, v]) => v > 0)
    .map(([name, v]) => `<div title="${esc(name)} ${v.toFixed(1)}%" style="width:${v}%;background:${colorOf(backends, name)}"></div>`);
  return `<div class="bar">${cells.join("")}</div>`;
}

function routeCard(route, live, backends) {
  const stats = live[route.name] || {};
  const names = Object.keys(route.weights);
  const configured = names.map((b) => [b, route.share_percent[b]]);
  const observed = names.map((b) => [b, stats[b]?.split_percent || 0]);
  const rows = names.map((b) => {
    const s = stats[b] || {};
    const errClass = s.error_rate > 0.01 ? "bad" : "";
    return `<tr data-backend="${esc(b)}"><td><span class="swatch" style="background:${colorOf(backends, b)}"></span>${esc(b)}</td>
      <td class="weight">${route.weights[b]}</td><td class="share">${route.share_percent[b]}%</td>
      <td class="live-split">${s.split_percent ?? "–"}${s.split_percent != null ? "%" : ""}</td>
      <td class="requests">${s.requests ?? 0}</td><td class="error-rate ${errClass}">${pct(s.error_rate)}</td>
      <td class="p99">${ms(s.p99_ms)}</td></tr>`;
  });
  const shadow = route.shadow ? `<div class="legend">shadow → ${esc(route.shadow.backend)} (${route.shadow.percent}% of GETs)</div>` : "";
  return `<div class="card" data-route="${esc(route.name)}">
    <h3>${esc(route.name)} <code>${esc(route.prefix)}${route.methods ? " " + esc(route.methods.join(",")) : ""}</code></h3>
    <div class="legend">weights</div>${bar(configured, backends)}
    <div class="legend">live split</div>${bar(observed, backends)}
    <table><thead><tr><th>backend</th><th>weight</th><th>share</th><th>live</th><th>req</th><th>errors</th><th>p99</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>${shadow}</div>`;
}

function rampBlock(route, ramp) {
  const plan = ramp.plan;
  const steps = plan.steps.map((s, i) => (i === ramp.step_index ? `<b>${s}</b>` : s)).join(" → ");
  const history = ramp.history.slice(-8).reverse().map((h) => `<tr><td>${when(h.at)}</td>
    <td>${h.percent ?? ""}${h.percent != null ? "%" : ""}</td><td>${esc(h.outcome)}</td>
    <td style="text-align:left">${esc(h.reason)}</td></tr>`);
  return `<div class="card ramp" data-ramp-route="${esc(route)}">
    <h3>${esc(route)}: ${esc(plan.baseline)} → ${esc(plan.candidate)}
      <span class="badge ${esc(ramp.state)}" data-state="${esc(ramp.state)}">${esc(ramp.state)}</span>
      <span class="percent">${ramp.percent}%</span></h3>
    <div class="legend">steps ${steps} · every ${plan.interval_seconds}s · min ${plan.min_requests} requests</div>
    ${ramp.reason ? `<p class="reason ${ramp.state === "rolled_back" ? "bad" : ""}">${esc(ramp.reason)}</p>` : ""}
    <table><tbody>${history.join("")}</tbody></table></div>`;
}

function shadowBlock(shadow) {
  const counts = Object.entries(shadow.counts).map(([route, c]) => `<tr data-shadow-route="${esc(route)}">
    <td>${esc(route)}</td><td>${c.match}</td><td class="mismatches ${c.mismatch ? "bad" : ""}">${c.mismatch}</td>
    <td>${c.error}</td><td>${c.dropped}</td></tr>`);
  const table = counts.length
    ? `<table><thead><tr><th>route</th><th>match</th><th>mismatch</th><th>error</th><th>dropped</th></tr></thead><tbody>${counts.join("")}</tbody></table>`
    : `<p class="muted">No shadow traffic yet.</p>`;
  const latest = shadow.latest_mismatches.slice(0, 5).map((m) => `<div class="mismatch">
    <b>${esc(m.route)}</b> <code>${esc(m.path)}</code> · ${esc(m.primary.backend)} ${m.primary.status} vs ${esc(m.candidate.backend)} ${m.candidate.status ?? "error"}
    <div>${m.differences.slice(0, 4).map((d) => `<code>${esc(d.path)}: ${esc(JSON.stringify(d.primary))} ≠ ${esc(JSON.stringify(d.candidate))}</code>`).join("<br>")}</div></div>`);
  return table + `<div id="mismatches">${latest.join("")}</div>`;
}

function stageBanner(stage) {
  if (stage.current === null) {
    const closest = stage.closest;
    return `<div class="banner off" data-stage-number="none">
      <h2>At no declared stage <small>closest: stage ${closest.number} · ${esc(closest.name)}</small></h2>
      <ul class="differences">${stage.differences.map((d) => `<li><code>${esc(d)}</code></li>`).join("")}</ul>
      <p class="muted">A stage move is refused until the system is back at a declared stage.</p></div>`;
  }
  const next = stage.next;
  const following = next
    ? `<div class="next" data-next-stage="${next.number}">
        <div><b>next: stage <span class="next-number">${next.number}</span></b> ·
          <span class="next-name">${esc(next.name)}</span>
          <code>shop stage apply ${next.number}</code></div>
        <div class="legend">traffic: ${esc(next.traffic)} · data: ${esc(next.data)}</div>
        <ol class="steps">${next.steps.map((step) => `<li>${esc(step)}</li>`).join("")}</ol>
        ${next.missing.length ? `<div class="missing warn">needs ${next.missing.map(esc).join(", ")} running first (<code>shop run ${esc(next.missing[0])}</code>)</div>` : ""}</div>`
    : `<div class="next" data-next-stage="none"><b>the last stage</b>: nothing is left to move.</div>`;
  return `<div class="banner" data-stage-number="${stage.current}">
    <h2>stage <span class="stage-number">${stage.current}</span> of ${stage.last} ·
      <span class="stage-name">${esc(stage.name)}</span></h2>
    <div class="legend">traffic: ${esc(stage.traffic)} · data: ${esc(stage.data)}</div>
    ${stage.watch ? `<div class="legend">watch: ${esc(stage.watch)}</div>` : ""}</div>${following}`;
}

function extractionsTable(extractions) {
  const rows = extractions.map((e) => `<tr data-extraction="${esc(e.name)}" data-up="${e.up}">
    <td>${esc(e.name)} <span class="muted">${esc(e.service)}</span></td>
    <td class="phase">${esc(e.phase ?? "not started")}</td>
    <td class="mode">${e.up ? esc(e.mode ?? "–") : `<span class="bad">down</span>`}</td>
    <td class="sync-lag">${secs(e.sync.lag_seconds)}</td><td class="pending">${num(e.sync.pending)}</td>
    <td class="drift ${e.drift_rows ? "bad" : ""}">${num(e.drift_rows)}</td></tr>`);
  return `<table><thead><tr><th>extraction</th><th>phase</th><th>data mode</th><th>sync lag</th>
    <th>pending</th><th>drift rows</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function eventsTables(events) {
  const outboxes = events.outboxes.map((o) => `<tr data-outbox="${esc(o.process)}">
    <td>${esc(o.process)}</td><td class="backlog ${o.backlog > 0 ? "warn" : ""}">${num(o.backlog)}</td>
    <td class="oldest-age">${secs(o.oldest_age_seconds)}</td></tr>`);
  const groups = events.consumers.map((c) => `<tr data-group="${esc(c.group)}" data-process="${esc(c.process)}">
    <td>${esc(c.group)} <span class="muted">${esc(c.process)}</span></td>
    <td class="lag ${c.lag > 0 ? "warn" : ""}">${num(c.lag)}</td>
    <td class="parked ${c.parked > 0 ? "bad" : ""}">${num(c.parked)}</td></tr>`);
  const outboxTable = outboxes.length
    ? `<table><thead><tr><th>outbox</th><th>backlog</th><th>oldest</th></tr></thead><tbody>${outboxes.join("")}</tbody></table>`
    : `<p class="muted">No outbox answers.</p>`;
  const groupTable = groups.length
    ? `<table><thead><tr><th>consumer group</th><th>lag</th><th>parked</th></tr></thead><tbody>${groups.join("")}</tbody></table>`
    : `<p class="muted">No consumer group has read a partition yet.</p>`;
  return outboxTable + groupTable;
}

function readModelBlock(rm) {
  if (!rm.up) return `<p class="muted" data-read-model="down">Not running (it joins at the CQRS stage).</p>`;
  const row = (label, f) => `<tr data-window="${label}"><td>${label}</td><td class="count">${num(f.count)}</td>
    <td class="p50">${secs(f.p50_seconds)}</td><td class="p99">${secs(f.p99_seconds)}</td></tr>`;
  const views = Object.entries(rm.views || {}).map(([k, v]) => `${esc(k)} ${num(v)}`).join(" · ");
  return `<div data-read-model="up"><div class="legend">generation
      <b class="generation">${esc(rm.generation ?? "–")}</b>${views ? ` · views: ${views}` : ""}</div>
    <table><thead><tr><th>freshness</th><th>changes</th><th>p50</th><th>p99</th></tr></thead>
    <tbody>${row("lifetime", rm.freshness.lifetime)}${row(`last ${rm.freshness.recent.window_seconds}s`, rm.freshness.recent)}</tbody></table></div>`;
}

function renderMigration(m) {
  $("stage").innerHTML = stageBanner(m.stage);
  $("stage").dataset.stageNumber = m.stage.current ?? "none";
  $("extractions").innerHTML = extractionsTable(m.extractions);
  $("events").innerHTML = eventsTables(m.events);
  $("read-model").innerHTML = readModelBlock(m.read_model);
  $("gathered").textContent = `asked in ${m.gathered_in_ms} ms`;
  $("processes").innerHTML = m.processes.map((p) => `<li data-process="${esc(p.name)}" data-state="${esc(p.state)}">
    <span class="dot"></span>${esc(p.name)} <span class="muted">${esc(p.state)}</span></li>`).join("");
}

function render(data) {
  const backends = Object.keys(data.backends);
  $("window").textContent = `table v${data.version} · live window ${data.live.window_seconds}s`;
  $("routes").innerHTML = data.routes.map((r) => routeCard(r, data.live.routes, backends)).join("");
  const ramps = Object.entries(data.ramps.latest);
  $("ramps").innerHTML = ramps.length
    ? ramps.map(([route, ramp]) => rampBlock(route, ramp)).join("")
    : `<p class="muted">No ramp has run yet. Start one with <code>shop ramp ROUTE --to SERVICE</code>.</p>`;
  $("shadow").innerHTML = shadowBlock(data.shadow);
  $("changes").innerHTML = data.changes.slice(0, 10).map((c) => `<li>${when(c.at)} · v${c.version} · ${esc(c.actor)}
    ${esc(Object.entries(c.weights).map(([r, w]) => `${r} ${Object.entries(w).map(([b, x]) => `${b}=${x}`).join(" ")}`).join("; "))}
    ${c.reason ? `<span class="muted">(${esc(c.reason)})</span>` : ""}</li>`).join("");
  document.body.dataset.version = data.version;
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

class Refused extends Error {}

async function read(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (res.status === 401 || res.status === 403) throw new Refused(body.error.message);
  if (!body.success) throw new Error(body.error.message);
  return body.data;
}

async function poll() {
  // Both at once; one failing still lets the other's panels refresh.
  const [status, migration] = await Promise.allSettled([read("/admin/status"), read("/admin/migration")]);
  const refused = [status, migration].find((r) => r.status === "rejected" && r.reason instanceof Refused);
  if (refused) {
    sessionStorage.removeItem("shopAdminToken");
    showLogin(refused.reason.message);
    return;
  }
  if (status.status === "fulfilled") render(status.value);
  if (migration.status === "fulfilled") renderMigration(migration.value);
  const failed = [status, migration].find((r) => r.status === "rejected");
  if (failed) setStatus("error", `error: ${failed.reason.message}`);
  else setStatus("live", `live · ${new Date().toLocaleTimeString()}`);
  setTimeout(poll, POLL_MS);
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  setStatus("error", message || "admin token needed");
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("shopAdminToken", token);
  $("login").hidden = true;
  $("main").hidden = false;
  poll();
});

if (token) {
  $("main").hidden = false;
  poll();
} else {
  showLogin();
}
