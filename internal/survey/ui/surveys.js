// qgate survey pages: my active surveys, open surveys, survey details, results per
// distribution, distribution data. Every value from the API is put in the page as text; links
// go to Qualtrics (http/https only) in a new tab. qgate changes nothing in Qualtrics.
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

// link returns an <a> to a Qualtrics deep link, or an empty text when the URL is not http(s).
function link(url, label) {
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return document.createTextNode("");
  const a = el("a", label);
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

// action returns a button that runs fn.
function action(label, fn) {
  const b = el("button", label);
  b.type = "button";
  b.addEventListener("click", fn);
  return b;
}

// table renders rows; a column's getter may return a DOM node (links, buttons) or text.
function table(cols, rows) {
  const t = el("table");
  const h = t.insertRow();
  cols.forEach(([label]) => h.appendChild(el("th", label)));
  rows.forEach((row) => {
    const tr = t.insertRow();
    cols.forEach(([, get]) => {
      const v = get(row);
      const td = el("td");
      if (v instanceof Node) td.appendChild(v); else td.textContent = v === undefined || v === null ? "" : String(v);
      tr.appendChild(td);
    });
  });
  return t;
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

$("#mine").addEventListener("submit", (e) => {
  e.preventDefault();
  const email = new FormData(e.target).get("email").trim();
  show("Active surveys of " + email, async () => {
    const p = await api("/v1/people/" + encodeURIComponent(email) + "/surveys");
    if (!p.surveys.length) return el("p", "Nothing to answer.");
    return table([
      ["survey", (r) => r.surveyName],
      ["status", (r) => r.status],
      ["sent", (r) => r.sentAt || ""],
      ["due", (r) => r.expiresAt || "no due date"],
      ["", (r) => link(r.links.respond, "Respond in Qualtrics")],
      ["", (r) => action("Details", () => survey(r.surveyId, r.links.respond))],
    ], p.surveys);
  });
});

$("#open").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = new URLSearchParams([...new FormData(e.target)].filter(([, v]) => v));
  show("Surveys", async () => {
    const p = await api("/v1/surveys?" + q);
    if (!p.surveys.length) return el("p", "No survey.");
    return table([
      ["survey", (s) => s.name],
      ["active", (s) => s.isActive ? "yes" : "no"],
      ["expires", (s) => s.expiresAt || ""],
      ["modified", (s) => s.lastModified],
      ["", (s) => action("Details", () => survey(s.id))],
      ["", (s) => link(s.links.results, "Results in Qualtrics")],
    ], p.surveys);
  });
});

// survey shows a survey's details and its results per distribution; respond, when the
// details were opened from someone's active surveys, is their personal link.
function survey(id, respond) {
  show("Survey " + id, async () => {
    const s = await api("/v1/surveys/" + encodeURIComponent(id));
    const d = el("div");
    d.appendChild(el("p", `${s.name} — ${s.isActive ? "active" : "inactive"}, expires ${s.expiresAt || "never"}`));
    if (respond) {
      const r = link(respond, "Respond in Qualtrics");
      r.className = "respond";
      d.appendChild(r);
      d.appendChild(document.createTextNode(" "));
    }
    d.appendChild(link(s.links.survey, "Open the survey in Qualtrics"));
    d.appendChild(s.distributions.length ? table([
      ["distribution", (x) => x.id],
      ["sent", (x) => x.sendDate || ""],
      ["links expire", (x) => x.linkExpiresAt || ""],
      ["finished / sent", (x) => `${x.stats.finished} / ${x.stats.sent}`],
      ["", (x) => action("Results", () => distribution(x.id, ""))],
    ], s.distributions) : el("p", "No distribution."));
    return d;
  });
}

function distribution(id, status) {
  show("Distribution " + id, async () => {
    const x = await api("/v1/distributions/" + encodeURIComponent(id) + (status ? "?status=" + encodeURIComponent(status) : ""));
    const d = el("div");
    d.appendChild(table([["figure", (r) => r[0]], ["value", (r) => r[1]]], Object.entries(x.stats)));
    d.appendChild(link(x.links.review, "Review Distributions"));
    const f = el("form");
    const sel = el("select");
    ["", "Pending", "Success", "Opened", "SurveyStarted", "SurveyPartiallyFinished", "SurveyFinished", "HardBounce", "SoftBounce", "Complaint"].forEach((v) => {
      const o = el("option", v || "any status");
      o.value = v;
      o.selected = v === status;
      sel.appendChild(o);
    });
    f.appendChild(sel);
    f.appendChild(action("Filter", () => distribution(id, sel.value)));
    d.appendChild(f);
    d.appendChild(table([
      ["email", (r) => r.email],
      ["status", (r) => r.status],
      ["sent", (r) => r.sentAt || ""],
      ["completed", (r) => r.responseCompletedAt || ""],
    ], x.recipients));
    return d;
  });
}
