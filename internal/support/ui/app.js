// qgate support page: reads the support API with the key the user gives. Every value from the
// API is put in the page as text (never as HTML).
"use strict";
const $ = (s) => document.querySelector(s);
let key = sessionStorage.getItem("qgate.key") || "";
const showKey = () => { $("#keystate").textContent = key ? "key set for this tab" : "no key"; };
showKey();

$("#keyform").addEventListener("submit", (e) => {
  e.preventDefault();
  key = $("#key").value.trim();
  sessionStorage.setItem("qgate.key", key);
  $("#key").value = "";
  showKey();
});

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + key } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const p = (body.errors || [])[0] || {};
    throw new Error(`${r.status} ${p.code || ""} ${p.path ? "(" + p.path + ")" : ""} ${p.message || ""}`);
  }
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function table(cols, rows) {
  const t = el("table");
  const h = t.insertRow();
  cols.forEach(([label]) => h.appendChild(el("th", label)));
  rows.forEach((row) => {
    const tr = t.insertRow();
    cols.forEach(([, get, cls]) => tr.appendChild(el("td", get(row), cls ? cls(row) : "")));
  });
  return t;
}

function deliveries(list) {
  return table([
    ["delivery", (d) => d.deliveryId],
    ["update", (d) => d.updateId],
    ["destination", (d) => d.destinationId],
    ["status", (d) => d.status, (d) => d.status],
    ["reason", (d) => d.reason || ""],
    ["attempts", (d) => d.attempts.map((a) => `#${a.n} ${a.at} ${a.statusCode || "-"} ${a.outcome} ${a.reason}${a.error ? " — " + a.error : ""}`).join("\n")],
    ["updated", (d) => d.updatedAt],
  ], list);
}

async function show(title, fn) {
  const out = $("#out");
  out.replaceChildren(el("h2", title));
  try {
    out.appendChild(await fn());
  } catch (err) {
    out.appendChild(el("p", err.message, "error"));
  }
}

$("#byupdate").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = new FormData(e.target).get("id").trim();
  show("Update " + id, async () => {
    const v = await api("/v1/updates/" + encodeURIComponent(id));
    const d = el("div");
    d.appendChild(el("p", `received ${v.receivedAt}, routed ${v.routedAt}, audiences: ${v.audiences.join(", ") || "none"}`));
    d.appendChild(v.deliveries.length ? deliveries(v.deliveries) : el("p", "No destination took this update (no activated audience matched)."));
    return d;
  });
});

$("#byidentity").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
  show("Deliveries", async () => {
    const p = await api("/v1/deliveries?" + q);
    return p.deliveries.length ? deliveries(p.deliveries) : el("p", "No delivery matches.");
  });
});

$("#bydest").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const id = f.get("id").trim();
  show("Destination " + id, async () => {
    const s = await api(`/v1/destinations/${encodeURIComponent(id)}/stats?window=${f.get("window")}`);
    const rows = [
      ["window", `${s.window} (since ${s.since})`],
      ["paused", s.paused],
      ["circuit", `${s.circuit.state} (${s.circuit.source}${s.circuit.since ? ", since " + s.circuit.since : ""})`],
      ["received", s.received],
      ...Object.entries(s.byStatus).map(([k, v]) => [k, v]),
      ["excluded by reason", JSON.stringify(s.excludedByReason)],
      ["dead-lettered by reason", JSON.stringify(s.deadLetteredByReason)],
      ["POST latency p50 / p99 ms", `${s.attemptLatencyMs.p50 ?? "-"} / ${s.attemptLatencyMs.p99 ?? "-"}`],
      ["end-to-end p50 / p99 ms", `${s.endToEndLatencyMs.p50 ?? "-"} / ${s.endToEndLatencyMs.p99 ?? "-"}`],
      ["backlog (parked)", `${s.backlog} (${s.parked})`],
    ];
    return table([["figure", (r) => r[0]], ["value", (r) => r[1]]], rows);
  });
});

$("#deadletters").addEventListener("click", () => {
  const id = new FormData($("#bydest")).get("id").trim();
  show("Dead letters", async () => {
    const p = await api("/v1/dead-letters?destinationId=" + encodeURIComponent(id));
    return p.deliveries.length ? deliveries(p.deliveries) : el("p", "No dead letters.");
  });
});
