// Browser tests of qgate's support page: a live node seeded by ../server (go run), driven in
// Debian's headless Chromium through playwright-core. Screenshots go to ../artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { here, startServer, launch, signIn } from "../lib.mjs";

const artifacts = path.resolve(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

let server, seed, browser, page;
const consoleErrors = [];

const shot = (name) => page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });

before(async () => {
  [server, seed] = await startServer();
  browser = await launch();
  page = await browser.context.newPage();
  // Expected 404s: the browser's favicon, and GET /v1/alerts on a node without it (the page
  // then reads each destination's alerts).
  page.on("console", (m) => {
    const url = m.location().url || "";
    if (m.type() === "error" && !/\/favicon\.ico$|\/v1\/alerts$/.test(url)) consoleErrors.push(m.text() + " " + url);
  });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  await signIn(page, seed);
});

after(async () => {
  await browser?.close();
  server?.stdin.end(); // the server stops at the end of its stdin
});

test("the key stays in this tab's sessionStorage, never in the page", async () => {
  assert.equal(await page.evaluate(() => sessionStorage.getItem("qgate.key")), seed.supportKey);
  assert.equal(await page.inputValue("#key"), "");
  assert.equal(await page.evaluate(() => localStorage.length), 0);
});

test("search by email pages through every delivery with More", async () => {
  await page.fill("#byidentity [name=identity]", seed.email);
  await page.click("#byidentity button");
  const rows = page.locator("#out table.results tbody tr");
  await assert.doesNotReject(rows.nth(49).waitFor());
  assert.equal(await rows.count(), 50);
  assert.match(await page.textContent("#out .count"), /50 deliveries so far/);
  await shot("search");
  await page.click("#out button.more");
  await rows.nth(seed.daveDeliveries - 1).waitFor();
  assert.equal(await rows.count(), seed.daveDeliveries);
  assert.equal(await page.isHidden("#out button.more"), true);
  assert.ok(!page.url().includes("example.com"), "the email stays out of the address bar: " + page.url());
  assert.match(await page.textContent("#out .count"), new RegExp(`^${seed.daveDeliveries} deliveries$`));
  // Destinations appear by name, and every status of the seed is there.
  const text = await page.textContent("#out table.results");
  for (const s of ["nps follow-up", "crm sync", "loyalty survey", "delivered", "excluded", "dead_lettered"]) assert.ok(text.includes(s), s);
});

test("search by destination, status and time range", async () => {
  await page.selectOption("#byidentity [name=destinationId]", { label: "crm sync" });
  await page.selectOption("#byidentity [name=status]", "excluded");
  await page.selectOption("#byidentity [name=range]", "1");
  await page.click("#byidentity button");
  const rows = page.locator("#out table.results tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), seed.daveDeliveries / 3);
  const cells = await page.locator("#out table.results tbody td:nth-child(2)").allTextContents();
  assert.ok(cells.every((c) => c === "crm sync"), cells.join());
  // A range in the past finds nothing.
  await page.selectOption("#byidentity [name=range]", "custom");
  await page.fill("#byidentity [name=since]", "2020-01-01T00:00:00");
  await page.fill("#byidentity [name=until]", "2020-01-02T00:00:00");
  await page.click("#byidentity button");
  await page.locator("#out .count", { hasText: "No delivery matches." }).waitFor();
  await page.selectOption("#byidentity [name=range]", "");
  await page.selectOption("#byidentity [name=destinationId]", "");
  await page.selectOption("#byidentity [name=status]", "");
});

test("a profile excluded for a missing identity is found by the email it carried", async () => {
  await page.fill("#byidentity [name=identity]", seed.excludedOnly);
  await page.click("#byidentity button");
  const rows = page.locator("#out table.results tbody tr");
  await rows.first().waitFor();
  const text = await page.textContent("#out table.results");
  assert.ok(text.includes("crm sync") && text.includes("missing_identity"), text);
});

test("an update's timeline shows the fan-out, attempts, response excerpts and the payload", async () => {
  await page.fill("#byupdate [name=id]", seed.firstUpdate);
  await page.click("#byupdate button");
  const cards = page.locator("#out article.delivery");
  await cards.nth(2).waitFor();
  assert.equal(await cards.count(), 3);
  const nps = page.locator("#out article.delivery", { hasText: "nps follow-up" });
  const attempts = await nps.locator("table.attempts tbody tr").allTextContents();
  assert.equal(attempts.length, 2, attempts.join("|"));
  assert.match(attempts[0], /503.*retryable.*server_error/);
  assert.match(attempts[1], /200.*delivered/);
  const dead = page.locator("#out article.delivery", { hasText: "loyalty survey" });
  assert.match(await dead.locator("td.excerpt").first().textContent(), /Invalid field: loyaltyTier/);
  await dead.locator("button.payloadbtn").click();
  const payload = JSON.parse(await dead.locator("pre.payload").textContent());
  assert.deepEqual(payload.identityMap, { Email: [{ id: seed.email }] });
  assert.deepEqual(Object.keys(payload.segmentMembership.ups), ["aud-loyalty"]); // only its audience
  await nps.locator("button.payloadbtn").click();
  await nps.getByText("keeps no payload for delivered").waitFor();
  assert.match(await page.textContent("#out article.delivery:has-text('crm sync')"), /Excluded: never sent/);
  await shot("timeline");
  // The timeline is a link to share: a reload (same tab, same key) opens it again.
  assert.ok(page.url().endsWith("#update=" + seed.firstUpdate), page.url());
  await page.reload();
  await page.locator("#out article.delivery", { hasText: "loyalty survey" }).waitFor();
});

// Replay keeps order (another part of issue #14): the server may leave a dead letter alone
// because its destination already received a newer update of the profile, answering
// skipped: [{deliveryId, reason: "newer_delivered", newerUpdateId}], and accept force: true.
// This branch's server has no such check, so the two answers are scripted here (page.route);
// everything else is the real page.
test("a replay skipped to keep order says why and can be forced behind a second confirmation", async () => {
  const dead = page.locator("#out article.delivery", { hasText: "loyalty survey" });
  const id = await dead.getAttribute("data-delivery-id");
  const bodies = [];
  await page.route("**/v1/dead-letters/replay", async (route) => {
    const body = JSON.parse(route.request().postData());
    bodies.push(body);
    const answer = body.force
      ? { replayed: 1, deliveryIds: [id], skipped: [] }
      : { replayed: 0, deliveryIds: [], skipped: [{ deliveryId: id, reason: "newer_delivered", newerUpdateId: "upd-newer" }] };
    await route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(answer) });
  });
  try {
    await dead.locator("button.replay").click();
    await page.click("#confirmok");
    await dead.getByText("Not replayed.").waitFor();
    assert.match(await dead.locator(".skipped").textContent(), /newer update of the same profile \(upd-newer\)/);
    await dead.locator("button.force").click();
    assert.match(await page.textContent("#confirmtext"), /anyway\? The destination would receive it after a newer update/);
    await page.click("#confirmok");
    await dead.getByText("Replayed 1 anyway.").waitFor();
    assert.deepEqual(bodies, [{ deliveryIds: [id] }, { deliveryIds: [id], force: true }]);
  } finally {
    await page.unroute("**/v1/dead-letters/replay");
  }
  await page.reload(); // the timeline again, from its link
  await dead.locator("button.replay").waitFor();
});

test("replay from the timeline asks first; cancel changes nothing, confirm requeues", async () => {
  const dead = page.locator("#out article.delivery", { hasText: "loyalty survey" });
  const id = await dead.getAttribute("data-delivery-id");
  await dead.locator("button.replay").click();
  assert.equal(await page.isVisible("#confirm"), true);
  assert.match(await page.textContent("#confirmtext"), /Replay 1 dead letter to loyalty survey\?/);
  await shot("replay-confirm");
  await page.click("#confirmcancel");
  assert.equal(await page.isVisible("#confirm"), false);
  let r = await page.request.get(`${seed.url}/v1/deliveries/${id}`, { headers: { Authorization: "Bearer " + seed.supportKey } });
  assert.equal((await r.json()).status, "dead_lettered");

  await dead.locator("button.replay").click();
  await page.click("#confirmok");
  await dead.getByText("Replayed: back to pending.").waitFor();
  // The simulator's script is spent: the replayed delivery goes through.
  for (let i = 0; i < 100; i++) {
    r = await page.request.get(`${seed.url}/v1/deliveries/${id}`, { headers: { Authorization: "Bearer " + seed.supportKey } });
    if ((await r.json()).status === "delivered") break;
    await page.waitForTimeout(100);
  }
  assert.equal((await r.json()).status, "delivered");
});

test("dead letters: replay selected, then replay all, each behind the confirmation", async () => {
  await page.click("#tabs [data-tab=deadletters]");
  await page.selectOption("#dlform [name=destinationId]", { label: "loyalty survey" });
  await page.click("#dlform button");
  const rows = page.locator("#out table.results tbody tr");
  await rows.nth(seed.deadLetters - 2).waitFor();
  assert.equal(await rows.count(), seed.deadLetters - 1); // one was replayed above
  // The two oldest updates still dead-lettered, so that the ones replayed after them are newer:
  // nothing is held back to keep order. They are found by update, not by place in the list: the
  // list is newest change first, and two dead letters refused in the same millisecond are in
  // delivery-ID order there, not in the order of their updates.
  const r = await page.request.get(`${seed.url}/v1/dead-letters?destinationId=${seed.destinations["loyalty survey"]}&limit=100`,
    { headers: { Authorization: "Bearer " + seed.supportKey } });
  assert.equal(r.status(), 200);
  const order = (d) => seed.daveUpdates.indexOf(d.updateId);
  const oldest = (await r.json()).deliveries.sort((a, b) => order(a) - order(b));
  assert.equal(oldest.length, seed.deadLetters - 1);
  assert.ok(oldest.every((d) => order(d) > 0), "each dead letter is one of Dave's later updates");
  for (const d of oldest.slice(0, 2)) await page.getByLabel("select " + d.deliveryId).check();
  await page.click("#out button.replay");
  assert.match(await page.textContent("#confirmtext"), /Replay 2 selected dead letters to loyalty survey\?/);
  await page.click("#confirmok");
  await page.getByText("Replayed 2 of 2.").waitFor();
  await page.click("#out button.replayall");
  assert.match(await page.textContent("#confirmtext"), /every dead letter of loyalty survey/);
  await shot("deadletters-confirm");
  await page.click("#confirmok");
  await page.getByText(`Replayed ${seed.deadLetters - 3} dead letters.`).waitFor();
  await page.click("#dlform button");
  await page.locator("#out .count", { hasText: "No delivery matches." }).waitFor();
});

test("destinations by name, with figures and charts", async () => {
  await page.click("#tabs [data-tab=destinations]");
  const list = page.locator("#destlist table.destinations");
  await list.waitFor();
  const text = await list.textContent();
  assert.ok(["billing nps", "crm sync", "loyalty survey", "nps follow-up"].every((n) => text.includes(n)), text);
  assert.ok(!/token|https?:\/\//.test(text), "no URL or token in support's list");
  await list.getByRole("button", { name: "nps follow-up" }).click();
  await page.locator("#out table.stats").waitFor();
  const charts = page.locator("#out figure.chart");
  assert.equal(await charts.count(), 4);
  // Delivered attempts are drawn as bars; p50/p99 as lines; the circuit as a band.
  assert.ok((await charts.nth(0).locator("rect.s0").count()) > 0, "delivered bars");
  assert.ok((await charts.nth(0).locator("rect.s1").count()) > 0, "the 503's retryable bar");
  assert.equal(await charts.nth(1).locator("polyline").count(), 2);
  assert.ok((await charts.nth(3).locator("rect.circuit.closed").count()) >= 1);
  await shot("destination");
});

test("the circuit of a destination answering 401 shows open, with its alert", async () => {
  await page.click("#tabs [data-tab=destinations]");
  await page.locator("#destlist").getByRole("button", { name: "billing nps" }).click();
  // The circuit opens after the 401s; reload the view until its alert is recorded.
  for (let i = 0; i < 50; i++) {
    await page.locator("#out table.stats").waitFor();
    if (await page.locator("#out rect.circuit.open").count()) break;
    await page.waitForTimeout(200);
    await page.locator("#out .actions").getByRole("button", { name: "1h" }).click();
  }
  assert.ok((await page.locator("#out rect.circuit.open").count()) >= 1, "open span");
  assert.match(await page.textContent("#out table.alerts"), /circuit_opened/);
  await shot("destination-circuit");
  await page.click("#tabs [data-tab=alerts]");
  await page.locator("#out table.alerts").waitFor();
  assert.match(await page.textContent("#out table.alerts"), /billing nps.*circuit_opened/s);
  await shot("alerts");
});

test("text from the API is never HTML; the page ran without script errors", async () => {
  // A destination name carrying markup shows as text.
  const op = { Authorization: "Bearer " + seed.operatorKey };
  const nps = await (await page.request.get(`${seed.url}/v1/destinations/${seed.destinations["nps follow-up"]}`, { headers: op })).json();
  const r = await page.request.post(`${seed.url}/v1/destinations`, {
    headers: op,
    data: { name: "<img src=x onerror=alert(1)>", url: nps.url, username: "u", apiToken: "t0123456789", identityMappings: [{ source: "Email", target: "email" }], audiences: ["aud-x"] },
  });
  assert.equal(r.status(), 201, await r.text());
  await page.reload();
  await page.click("#tabs [data-tab=destinations]");
  await page.locator("#destlist").getByRole("button", { name: "<img src=x onerror=alert(1)>" }).waitFor();
  assert.equal(await page.locator("#destlist img").count(), 0);
  const res = await page.request.get(seed.url + "/ui");
  assert.match(res.headers()["content-security-policy"], /script-src 'self'/);
  assert.deepEqual(consoleErrors, []);
});
