// qgate support page: reads the support API with the key the user gives (kept in this tab's
// sessionStorage only). Every value from the API is put in the page as text (textContent,
// SVG attributes), never as HTML; the page's CSP allows no inline script.
"use strict";
const $ = (s, root = document) => root.querySelector(s);
const $$ = (s, root = document) => [...root.querySelectorAll(s)];
const SVG = "http://www.w3.org/2000/svg";
let key = sessionStorage.getItem("qgate.key") || "";
let destinations = []; // [{id, name, enabled, paused, audiences}]

// ---- plumbing ----------------------------------------------------------------------------
async function api(path, opts = {}) {
  const init = { headers: { Authorization: "Bearer " + key } };
  if (opts.body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, init);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const p = (body.errors || [])[0] || {};
    const e = new Error(`${r.status} ${p.code || ""} ${p.path ? "(" + p.path + ")" : ""} ${p.message || ""}`.trim());
    e.status = r.status;
    throw e;
  }
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function button(label, onClick, cls) {
  const b = el("button", label, cls);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function table(cols, rows, cls) {
  const t = el("table", null, cls);
  const h = t.createTHead().insertRow();
  cols.forEach(([label]) => h.appendChild(el("th", label)));
  const tb = t.createTBody();
  rows.forEach((row) => addRow(tb, cols, row));
  return t;
}

function addRow(tbody, cols, row) {
  const tr = tbody.insertRow();
  cols.forEach(([, get, cls]) => {
    const v = get(row);
    const td = el("td", v instanceof Node ? null : v, cls ? cls(row) : "");
    if (v instanceof Node) td.appendChild(v);
    tr.appendChild(td);
  });
  return tr;
}

const when = (t) => (t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const destName = (id) => (destinations.find((d) => d.id === id) || {}).name || id;

async function show(title, fn) {
  const out = $("#out");
  out.replaceChildren(el("h2", title));
  try {
    const node = await fn(out);
    if (node) out.appendChild(node);
  } catch (err) {
    out.appendChild(el("p", err.message, "error"));
  }
}

function notice(text, cls = "ok") {
  const p = el("p", text, "notice " + cls);
  p.setAttribute("role", "status");
  return p;
}

// ---- key and tabs ------------------------------------------------------------------------
const showKey = () => { $("#keystate").textContent = key ? "key set for this tab" : "no key: paste a support key"; };
showKey();
$("#keyform").addEventListener("submit", (e) => {
  e.preventDefault();
  key = $("#key").value.trim();
  sessionStorage.setItem("qgate.key", key);
  $("#key").value = "";
  showKey();
  loadDestinations().then(openLink);
});

$$("#tabs button").forEach((b) => b.addEventListener("click", () => openTab(b.dataset.tab)));
function openTab(name) {
  $$("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  $$(".tab").forEach((s) => { s.hidden = s.id !== "tab-" + name; });
  $("#out").replaceChildren();
  history.replaceState(null, "", location.pathname);
  if (name === "destinations") listDestinations();
  if (name === "alerts") listAlerts();
}

// ---- destinations (support's view: no secrets) -------------------------------------------
async function loadDestinations() {
  if (!key) return;
  const all = [];
  let cursor = "";
  try {
    do {
      const p = await api("/v1/support/destinations" + (cursor ? "?cursor=" + encodeURIComponent(cursor) : ""));
      all.push(...p.destinations);
      cursor = p.nextCursor || "";
    } while (cursor);
  } catch (err) {
    $("#keystate").textContent = "cannot list destinations: " + err.message;
    return;
  }
  destinations = all.sort((a, b) => a.name.localeCompare(b.name));
  $$(".destselect").forEach((s) => {
    const keep = s.value;
    s.replaceChildren(s.options[0]);
    destinations.forEach((d) => {
      const o = el("option", d.name + (d.paused ? " (paused)" : d.enabled ? "" : " (disabled)"));
      o.value = d.id;
      s.appendChild(o);
    });
    s.value = keep;
  });
}
loadDestinations().then(openLink);

function listDestinations() {
  const box = $("#destlist");
  box.replaceChildren(table([
    ["name", (d) => button(d.name, () => destinationView(d.id, "1h"), "link")],
    ["ID", (d) => d.id, () => "mono"],
    ["sending", (d) => (d.paused ? "paused" : d.enabled ? "yes" : "disabled")],
    ["audiences", (d) => d.audiences.join(", ")],
  ], destinations, "destinations"));
}

// ---- search ------------------------------------------------------------------------------
$("#byidentity [name=range]").addEventListener("change", (e) => { $("#customrange").hidden = e.target.value !== "custom"; });

$("#byidentity").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const q = new URLSearchParams();
  for (const k of ["identity", "destinationId", "status"]) if (f.get(k)) q.set(k, f.get(k).trim());
  const range = f.get("range");
  if (range === "custom") {
    if (f.get("since")) q.set("since", new Date(f.get("since")).toISOString());
    if (f.get("until")) q.set("until", new Date(f.get("until")).toISOString());
  } else if (range) {
    q.set("since", new Date(Date.now() - Number(range) * 3600e3).toISOString());
  }
  show("Deliveries for " + f.get("identity").trim(), (out) => searchPage(out, "/v1/deliveries", q));
});

const deliveryCols = [
  ["changed", (d) => when(d.updatedAt)],
  ["destination", (d) => destName(d.destinationId)],
  ["status", (d) => d.status, (d) => "status " + d.status],
  ["reason", (d) => d.reason || ""],
  ["attempts", (d) => d.attempts.length],
  ["last answer", (d) => { const a = d.attempts[d.attempts.length - 1]; return a ? `${a.statusCode || "-"} ${a.reason}` : ""; }],
  ["update", (d) => button("timeline", () => timeline(d.updateId), "link")],
];

// searchPage lists a paged answer (deliveries or dead letters) and follows nextCursor on "More".
async function searchPage(out, path, q, cols = deliveryCols, onRows) {
  const t = table(cols, [], "results");
  const count = el("p", "", "count");
  const more = button("More", () => next(), "more");
  more.hidden = true;
  out.append(count, t, more);
  let shown = 0;
  let cursor = "";
  async function next() {
    more.disabled = true;
    const qq = new URLSearchParams(q);
    if (cursor) qq.set("cursor", cursor);
    try {
      const p = await api(path + "?" + qq);
      p.deliveries.forEach((d) => addRow(t.tBodies[0], cols, d));
      shown += p.deliveries.length;
      cursor = p.nextCursor || "";
      more.hidden = !cursor;
      count.textContent = shown === 0 ? "No delivery matches." : `${shown} ${shown === 1 ? "delivery" : "deliveries"}${cursor ? " so far" : ""}`;
      if (onRows) onRows(p.deliveries);
    } catch (err) {
      out.appendChild(el("p", err.message, "error"));
    } finally {
      more.disabled = false;
    }
  }
  await next();
}

// ---- an update's timeline ----------------------------------------------------------------
$("#byupdate").addEventListener("submit", (e) => {
  e.preventDefault();
  timeline(new FormData(e.target).get("id").trim());
});

// Links a person can share: #update=ID and #destination=ID (never an email or external ID:
// the address bar ends up in browser history).
function link(kind, id) { history.replaceState(null, "", "#" + kind + "=" + encodeURIComponent(id)); }
async function openLink() {
  const m = /^#(update|destination)=(.+)$/.exec(location.hash);
  if (!m || !key) return;
  const id = decodeURIComponent(m[2]);
  if (m[1] === "update") timeline(id);
  else { openTab("destinations"); destinationView(id, "1h"); }
}

function timeline(id) {
  link("update", id);
  show("Update " + id, async () => {
    const v = await api("/v1/updates/" + encodeURIComponent(id));
    const d = el("div", null, "timeline");
    const steps = el("ol", null, "steps");
    steps.appendChild(el("li", `${when(v.receivedAt)} received (audiences: ${v.audiences.join(", ") || "none"})`));
    steps.appendChild(el("li", `${when(v.routedAt)} routed to ${v.deliveries.length} destination${v.deliveries.length === 1 ? "" : "s"}`));
    d.appendChild(steps);
    if (!v.deliveries.length) d.appendChild(el("p", "No destination took this update (no activated audience matched)."));
    v.deliveries.forEach((rec) => d.appendChild(deliveryCard(rec)));
    return d;
  });
}

function deliveryCard(rec) {
  const card = el("article", null, "delivery");
  card.dataset.deliveryId = rec.deliveryId;
  const h = el("h3");
  h.append(el("span", destName(rec.destinationId) + " "), el("span", rec.status, "status " + rec.status));
  card.appendChild(h);
  const facts = [`delivery ${rec.deliveryId}`, `created ${when(rec.createdAt)}`, `last change ${when(rec.updatedAt)}`];
  if (rec.reason) facts.push(`reason ${rec.reason}`);
  if (rec.nextAttemptAt) facts.push(`next attempt ${when(rec.nextAttemptAt)}`);
  card.appendChild(el("p", facts.join(" · "), "facts"));
  if (rec.status === "excluded") card.appendChild(el("p", "Excluded: never sent to this destination.", "hint"));
  if (rec.attempts.length) {
    card.appendChild(table([
      ["#", (a) => a.n],
      ["at", (a) => when(a.at)],
      ["HTTP", (a) => a.statusCode || "-"],
      ["latency ms", (a) => Math.round(a.latencyMs)],
      ["outcome", (a) => a.outcome],
      ["reason", (a) => a.reason],
      ["response excerpt", (a) => a.error || "", () => "excerpt"],
    ], rec.attempts, "attempts"));
  } else if (rec.status !== "excluded") {
    card.appendChild(el("p", "No attempt yet.", "hint"));
  }
  const actions = el("div", null, "actions");
  const payloadBox = el("div");
  actions.appendChild(button("Show payload", async (e) => {
    e.target.disabled = true;
    try {
      const p = await api(`/v1/deliveries/${encodeURIComponent(rec.deliveryId)}/payload`);
      const note = { dead_letter: "The payload kept with the dead letter (the exact body sent).", parked: "The payload waiting to be retried (the exact body to be sent).", none: "qgate keeps no payload for delivered, excluded or in-flight deliveries." }[p.source];
      payloadBox.replaceChildren(el("p", note, "hint"));
      if (p.payload !== null) payloadBox.appendChild(el("pre", JSON.stringify(p.payload, null, 2), "payload"));
    } catch (err) {
      payloadBox.replaceChildren(el("p", err.message, "error"));
    }
  }, "payloadbtn"));
  if (rec.status === "dead_lettered") {
    actions.appendChild(button("Replay", () => replay([rec.deliveryId], null, `1 dead letter to ${destName(rec.destinationId)}`, (n, r) => {
      const skipped = (r.skipped || []).length > 0;
      actions.appendChild(notice(n === 1 ? "Replayed: back to pending." : skipped ? "Not replayed." : "Nothing replayed (it was no longer a dead letter).", n === 1 ? "ok" : "warn"));
      card.insertBefore(skippedNote(r), payloadBox);
    }), "replay danger"));
  }
  card.append(actions, payloadBox);
  return card;
}

// ---- replay behind a confirmation --------------------------------------------------------
function confirmDialog(text) {
  const dlg = $("#confirm");
  $("#confirmtext").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

async function replay(ids, filter, what, done) {
  if (!(await confirmDialog(`Replay ${what}?`))) return;
  try {
    const r = await api("/v1/dead-letters/replay", { body: ids ? { deliveryIds: ids } : { filter } });
    done(r.replayed, r);
  } catch (err) {
    $("#out").appendChild(el("p", err.message, "error"));
  }
}

// skippedNote explains the dead letters a replay left alone because the destination already
// received a newer update of the same profile (replay keeps order), and offers to force them,
// behind a second confirmation.
function skippedNote(r) {
  const skipped = r.skipped || [];
  const box = el("div", null, "skipped");
  if (!skipped.length) return box;
  box.appendChild(el("p", `${skipped.length} not replayed: the destination already received a newer update of the same profile (${skipped.map((k) => k.newerUpdateId || k.reason).join(", ")}). Replaying would send an older update after it.`, "hint"));
  box.appendChild(button("Replay anyway", async () => {
    if (!(await confirmDialog(`Replay ${skipped.length} dead letter${skipped.length === 1 ? "" : "s"} anyway? The destination would receive ${skipped.length === 1 ? "it" : "them"} after a newer update.`))) return;
    try {
      const f = await api("/v1/dead-letters/replay", { body: { deliveryIds: skipped.map((k) => k.deliveryId), force: true } });
      box.replaceChildren(notice(`Replayed ${f.replayed} anyway.`));
    } catch (err) {
      box.appendChild(el("p", err.message, "error"));
    }
  }, "force danger"));
  return box;
}

// ---- dead letters ------------------------------------------------------------------------
$("#dlform").addEventListener("submit", (e) => {
  e.preventDefault();
  deadLetters(new FormData(e.target).get("destinationId"));
});

function deadLetters(destId) {
  show("Dead letters of " + destName(destId), async (out) => {
    const picked = new Set();
    const bar = el("div", null, "actions");
    const status = el("div");
    const pick = (d) => {
      const c = el("input");
      c.type = "checkbox";
      c.className = "pick";
      c.setAttribute("aria-label", "select " + d.deliveryId);
      c.addEventListener("change", () => { c.checked ? picked.add(d.deliveryId) : picked.delete(d.deliveryId); selected.disabled = picked.size === 0; });
      return c;
    };
    const cols = [["", pick], ...deliveryCols.filter(([k]) => k !== "destination")];
    const selected = button("Replay selected", () => replay([...picked], null, `${picked.size} selected dead letter${picked.size === 1 ? "" : "s"} to ${destName(destId)}`,
      (n, r) => { status.replaceChildren(notice(`Replayed ${n} of ${picked.size}.`), skippedNote(r)); }), "replay danger");
    selected.disabled = true;
    const all = button("Replay all", () => replay(null, { destinationId: destId }, `every dead letter of ${destName(destId)}`,
      (n, r) => { status.replaceChildren(notice(`Replayed ${n} dead letter${n === 1 ? "" : "s"}.`), skippedNote(r)); }), "replayall danger");
    bar.append(selected, all);
    out.append(bar, status);
    await searchPage(out, "/v1/dead-letters", new URLSearchParams({ destinationId: destId }), cols);
  });
}

// ---- a destination's figures and charts --------------------------------------------------
function destinationView(id, window) {
  link("destination", id);
  show("Destination " + destName(id), async (out) => {
    const pick = el("div", null, "actions");
    ["1h", "6h", "24h"].forEach((w) => pick.appendChild(button(w, () => destinationView(id, w), w === window ? "active" : "")));
    pick.appendChild(button("Dead letters", () => { openTab("deadletters"); $("#dlform [name=destinationId]").value = id; deadLetters(id); }));
    out.appendChild(pick);
    const [s, v] = await Promise.all([
      api(`/v1/destinations/${encodeURIComponent(id)}/stats?window=${window === "6h" ? "24h" : window}`),
      api(`/v1/destinations/${encodeURIComponent(id)}/series?window=${window}`),
    ]);
    out.appendChild(statsTable(s));
    const charts = el("div", null, "charts");
    const perMin = v.stepSeconds / 60;
    const outcomes = ["delivered", "retryable", "destination_fault", "permanent"];
    charts.appendChild(chart("Attempts per minute by outcome", v, [
      ...outcomes.map((o) => ({ name: o, kind: "bar", get: (b) => (b.attempts[o] || 0) / perMin })),
      { name: "excluded", kind: "bar", get: (b) => b.excluded / perMin },
    ]));
    charts.appendChild(chart("POST latency (ms)", v, [
      { name: "p50", kind: "line", get: (b) => b.latencyMs.p50 },
      { name: "p99", kind: "line", get: (b) => b.latencyMs.p99 },
    ]));
    charts.appendChild(chart("Backlog (pending or retrying)", v, [{ name: "backlog", kind: "line", get: (b) => b.backlog }]));
    charts.appendChild(circuitChart(v));
    out.appendChild(charts);
    if (v.sampled) out.appendChild(el("p", "This window holds more rows than one answer reads: the oldest buckets are incomplete.", "hint"));
    out.appendChild(el("h3", "Alerts in the window"));
    out.appendChild(v.alerts.length ? alertTable(v.alerts) : el("p", "None.", "hint"));
    return null;
  });
}

function statsTable(s) {
  const rows = [
    ["window", `${s.window} (since ${when(s.since)})`],
    ["sending", s.paused ? "paused" : "yes"],
    ["circuit", `${s.circuit.state} (${s.circuit.source}${s.circuit.since ? ", since " + when(s.circuit.since) : ""})`],
    ["received", s.received],
    ...Object.entries(s.byStatus).map(([k, v]) => [k, v]),
    ["excluded by reason", Object.entries(s.excludedByReason).map(([k, v]) => `${k}: ${v}`).join(", ") || "-"],
    ["dead-lettered by reason", Object.entries(s.deadLetteredByReason).map(([k, v]) => `${k}: ${v}`).join(", ") || "-"],
    ["POST latency p50 / p99 ms", `${s.attemptLatencyMs.p50 ?? "-"} / ${s.attemptLatencyMs.p99 ?? "-"}`],
    ["end-to-end p50 / p99 ms", `${s.endToEndLatencyMs.p50 ?? "-"} / ${s.endToEndLatencyMs.p99 ?? "-"}`],
    ["backlog (parked)", `${s.backlog} (${s.parked})`],
  ];
  return table([["figure", (r) => r[0]], ["value", (r) => r[1]]], rows, "stats");
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const W = 560, H = 150, PAD = { l: 44, r: 8, t: 8, b: 20 };
function frame(title, v, yMax) {
  const fig = el("figure", null, "chart");
  fig.appendChild(el("figcaption", title));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const plotH = H - PAD.t - PAD.b;
  s.appendChild(svg("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, class: "axis" }));
  if (yMax !== null) {
    [0, 0.5, 1].forEach((f) => {
      const y = H - PAD.b - f * plotH;
      s.appendChild(svg("line", { x1: PAD.l, y1: y, x2: W - PAD.r, y2: y, class: "grid" }));
      const t = svg("text", { x: PAD.l - 4, y: y + 4, "text-anchor": "end", class: "tick" });
      t.textContent = fmt(f * yMax);
      s.appendChild(t);
    });
  }
  const first = svg("text", { x: PAD.l, y: H - 4, class: "tick" });
  first.textContent = when(v.since).slice(11, 16);
  const last = svg("text", { x: W - PAD.r, y: H - 4, "text-anchor": "end", class: "tick" });
  last.textContent = when(v.until).slice(11, 16) + " UTC";
  s.append(first, last);
  fig.appendChild(s);
  return { fig, s, plotH };
}

const fmt = (x) => (x >= 100 ? Math.round(x) : Math.round(x * 10) / 10).toString();

// chart draws stacked bars and lines of the series' buckets; a legend names each series.
function chart(title, v, series) {
  const n = v.buckets.length;
  const bars = series.filter((x) => x.kind === "bar");
  const lines = series.filter((x) => x.kind === "line");
  let yMax = 0;
  v.buckets.forEach((b) => {
    yMax = Math.max(yMax, bars.reduce((a, x) => a + (x.get(b) || 0), 0), ...lines.map((x) => x.get(b) || 0));
  });
  yMax = yMax || 1;
  const { fig, s, plotH } = frame(title, v, yMax);
  const bw = (W - PAD.l - PAD.r) / n;
  const y = (val) => H - PAD.b - (val / yMax) * plotH;
  v.buckets.forEach((b, i) => {
    let base = 0;
    bars.forEach((x, k) => {
      const val = x.get(b) || 0;
      if (val > 0) {
        const r = svg("rect", { x: PAD.l + i * bw, y: y(base + val), width: Math.max(bw - 1, 1), height: y(base) - y(base + val), class: "s" + k });
        const tip = svg("title");
        tip.textContent = `${when(b.at)} ${x.name}: ${fmt(val)}`;
        r.appendChild(tip);
        s.appendChild(r);
      }
      base += val;
    });
  });
  lines.forEach((x, k) => {
    const pts = [];
    v.buckets.forEach((b, i) => { const val = x.get(b); if (val !== null && val !== undefined) pts.push(`${PAD.l + (i + 0.5) * bw},${y(val)}`); });
    if (pts.length) s.appendChild(svg("polyline", { points: pts.join(" "), class: "line l" + k }));
  });
  const legend = el("ul", null, "legend");
  bars.forEach((x, k) => legend.appendChild(el("li", x.name, "s" + k)));
  lines.forEach((x, k) => legend.appendChild(el("li", x.name, "l" + k)));
  fig.appendChild(legend);
  return fig;
}

function circuitChart(v) {
  const { fig, s } = frame("Circuit state", v, null);
  const t0 = Date.parse(v.since), span = Date.parse(v.until) - t0;
  const x = (t) => PAD.l + ((Date.parse(t) - t0) / span) * (W - PAD.l - PAD.r);
  v.circuit.forEach((c) => {
    const r = svg("rect", { x: x(c.from), y: PAD.t + 40, width: Math.max(x(c.to) - x(c.from), 1), height: 40, class: "circuit " + c.state });
    const tip = svg("title");
    tip.textContent = `${c.state} ${when(c.from)} – ${when(c.to)}`;
    r.appendChild(tip);
    s.appendChild(r);
  });
  const legend = el("ul", null, "legend");
  legend.append(el("li", "closed", "closed"), el("li", "open", "open"));
  fig.appendChild(legend);
  return fig;
}

function alertTable(alerts) {
  return table([
    ["at", (a) => when(a.at)],
    ["destination", (a) => destName(a.destinationId)],
    ["kind", (a) => a.kind],
    ["message", (a) => a.message],
  ], alerts, "alerts");
}

// ---- alerts ------------------------------------------------------------------------------
$("#loadalerts").addEventListener("click", () => listAlerts());
function listAlerts() {
  show("Alerts", async () => {
    // What each destination recorded (circuit opened or closed) in the last 24 hours ...
    const all = [];
    for (const d of destinations) {
      const v = await api(`/v1/destinations/${encodeURIComponent(d.id)}/series?window=24h`);
      all.push(...v.alerts);
    }
    all.sort((a, b) => b.at.localeCompare(a.at));
    const box = el("div");
    box.appendChild(el("p", "Alerts of the last 24 hours, from every destination.", "hint"));
    box.appendChild(all.length ? alertTable(all) : el("p", "No alerts.", "hint"));
    // ... and the alerts sent to alert subscriptions' webhooks, with their delivery state.
    let sent = null;
    try {
      sent = (await api("/v1/alerts")).alerts || [];
    } catch (err) {
      if (err.status !== 404) throw err; // a node without alert subscriptions
    }
    if (sent !== null) {
      box.appendChild(el("h3", "Sent to alert subscriptions"));
      box.appendChild(sent.length ? table([
        ["fired", (a) => when(a.firedAt)],
        ["event", (a) => a.event],
        ["destination", (a) => a.destinationName || destName(a.destinationId)],
        ["message", (a) => a.message],
        ["delivery", (a) => `${a.status} (${a.attempts} attempt${a.attempts === 1 ? "" : "s"})`],
      ], sent, "sent-alerts") : el("p", "None sent.", "hint"));
    }
    return box;
  });
}
