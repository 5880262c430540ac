// Browser tests of the survey pages (/ui/surveys, docs/survey-watch.md "Pages and API for
// people"): a live node seeded by ../server with a survey connection to the simulator's brand
// (internal/simulator brand.go), synced once, driven in Debian's headless Chromium through
// playwright-core. Screenshots go to ../artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { here, startServer, launch } from "../lib.mjs";

const artifacts = path.resolve(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

let server, seed, sv, browser, page;
const consoleErrors = [];

const shot = (name) => page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });
const out = () => page.locator("#out");

before(async () => {
  [server, seed] = await startServer();
  sv = seed.survey;
  browser = await launch();
  page = await browser.context.newPage();
  page.on("console", (m) => {
    const url = m.location().url || "";
    // Expected: the favicon, and the 401 of the wrong-key test.
    if (m.type() === "error" && !/\/favicon\.ico$/.test(url) && !/status of 401/.test(m.text())) consoleErrors.push(m.text() + " " + url);
  });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  await page.goto(seed.url + "/ui/surveys");
  await page.fill("#key", seed.supportKey);
  await page.click("#keyform button");
  await page.locator("#keystate", { hasText: "key set for this tab" }).waitFor();
});

after(async () => {
  await browser?.close();
  server?.stdin.end(); // the server stops at the end of its stdin
});

// mine shows the active surveys of email.
async function mine(email) {
  await page.fill("#mine [name=email]", email);
  await page.click("#mine button");
  await out().locator("h2", { hasText: "Active surveys of " + email }).waitFor();
}

test("my active surveys: the survey owed, with its due date and the personal Respond in Qualtrics link", async () => {
  await mine(sv.recipient);
  const row = out().locator("table tr", { hasText: sv.surveyName });
  await row.waitFor();
  assert.equal(await out().locator("table tr").count(), 2, "one survey owed, under the header row");
  assert.match(await row.textContent(), /SurveyStarted/);
  assert.match(await row.textContent(), /\d{4}-\d\d-\d\dT/, "the due date (link expiry) is shown");
  const respond = row.locator("a", { hasText: "Respond in Qualtrics" });
  const href = await respond.getAttribute("href");
  assert.match(href, new RegExp(`/jfe/form/${sv.surveyId}\\?Q_CHL=gl&Q_DL=`), "the personal link: " + href);
  assert.equal(await respond.getAttribute("target"), "_blank");
  assert.match(await respond.getAttribute("rel"), /noopener/);
  await shot("surveys-mine");
  // Someone who finished owes nothing.
  await mine(sv.finished);
  await out().locator("p", { hasText: "Nothing to answer." }).waitFor();
});

test("survey details from my surveys: Respond in Qualtrics, and results per distribution", async () => {
  await mine(sv.recipient);
  const respond = await out().locator("table tr", { hasText: sv.surveyName }).locator("a", { hasText: "Respond in Qualtrics" }).getAttribute("href");
  await out().locator("table tr", { hasText: sv.surveyName }).locator("button", { hasText: "Details" }).click();
  await out().locator("h2", { hasText: "Survey " + sv.surveyId }).waitFor();
  assert.match(await out().textContent(), new RegExp(`${sv.surveyName} — active`));
  assert.equal(await out().locator("a.respond", { hasText: "Respond in Qualtrics" }).getAttribute("href"), respond);
  assert.match(await out().locator("a", { hasText: "Open the survey in Qualtrics" }).getAttribute("href"), new RegExp(`/jfe/form/${sv.surveyId}$`));
  // Results per distribution: finished out of sent (carol finished; alice, bob and carol were
  // sent it, dave's is still pending).
  const dist = out().locator("table tr", { hasText: sv.distributionId });
  await dist.waitFor();
  assert.match(await dist.textContent(), /1 \/ 3/);
  await shot("surveys-details");
});

test("open surveys: active ones by default, inactive ones with all", async () => {
  await page.selectOption("#open [name=active]", "true");
  await page.click("#open button");
  await out().locator("h2", { hasText: "Surveys" }).waitFor();
  await out().locator("table tr", { hasText: sv.surveyName }).waitFor();
  let text = await out().textContent();
  assert.ok(text.includes("Onboarding Check-in"), text);
  assert.ok(!text.includes(sv.inactiveName), "an inactive survey is not open: " + text);
  await shot("surveys-open");
  await page.selectOption("#open [name=active]", "false");
  await page.click("#open button");
  await out().locator("table tr", { hasText: sv.inactiveName }).waitFor();
  text = await out().locator("table tr", { hasText: sv.inactiveName }).textContent();
  assert.match(text, /no/, "shown as inactive: " + text);
  // Filtered by connection: the same surveys; an unknown connection has none.
  await page.fill("#open [name=connectionId]", sv.connectionId);
  await page.click("#open button");
  await out().locator("table tr", { hasText: sv.inactiveName }).waitFor();
  await page.fill("#open [name=connectionId]", "svc_unknown");
  await page.click("#open button");
  await out().locator("p", { hasText: "No survey." }).waitFor();
  await page.fill("#open [name=connectionId]", "");
});

test("distribution data: stats, every recipient, a status filter and the Review Distributions link", async () => {
  await page.selectOption("#open [name=active]", "true");
  await page.click("#open button");
  await out().locator("table tr", { hasText: sv.surveyName }).locator("button", { hasText: "Details" }).click();
  await out().locator("h2", { hasText: "Survey " + sv.surveyId }).waitFor();
  await out().locator("table tr", { hasText: sv.distributionId }).locator("button", { hasText: "Results" }).click();
  await out().locator("h2", { hasText: "Distribution " + sv.distributionId }).waitFor();
  const stats = out().locator("table").first();
  assert.match(await stats.locator("tr", { hasText: "finished" }).textContent(), /finished\s*1/);
  assert.match(await stats.locator("tr", { hasText: "sent" }).first().textContent(), /sent\s*3/);
  const review = out().locator("a", { hasText: "Review Distributions" });
  // The brand's projects page; over the simulator's plain http, on its host (survey/links.go).
  assert.match(await review.getAttribute("href"), /^https?:\/\/[^/]+\/Q\/MyProjectsSection$/);
  assert.equal(await review.getAttribute("target"), "_blank");
  const recipients = out().locator("table").last();
  for (const who of ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]) {
    assert.ok((await recipients.textContent()).includes(who), who);
  }
  await shot("surveys-distribution");
  // Filter: only the finished recipient.
  await out().locator("form select").selectOption("SurveyFinished");
  await out().locator("form button", { hasText: "Filter" }).click();
  await page.waitForFunction(() => {
    const t = [...document.querySelectorAll("#out table")].pop();
    return t && t.rows.length === 2;
  });
  const only = await out().locator("table").last().textContent();
  assert.ok(only.includes("carol@example.com") && !only.includes("bob@example.com"), only);
  assert.equal(await out().locator("form select").inputValue(), "SurveyFinished");
});

test("a refused key shows the API's error, and no page error happened", async () => {
  await page.fill("#key", "qg_wrong_key");
  await page.click("#keyform button");
  await mine(sv.recipient);
  await out().locator("p.error", { hasText: "401" }).waitFor();
  await page.fill("#key", seed.supportKey);
  await page.click("#keyform button");
  assert.deepEqual(consoleErrors, []);
});
