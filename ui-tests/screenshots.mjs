// The documentation's screenshots (docs/img/ui-*.png): a node seeded with -history, so that the
// charts show an hour of traffic. Run with `make ui-screenshots` (or `node screenshots.mjs`).
import path from "node:path";
import { repo, startServer, launch, signIn } from "./lib.mjs";

const out = path.join(repo, "docs", "img");
const [server, seed] = await startServer("-history");
const browser = await launch();
try {
  const page = await browser.context.newPage();
  const shot = (name, fullPage = true) => page.screenshot({ path: path.join(out, "ui-" + name + ".png"), fullPage });
  await signIn(page, seed);

  await page.fill("#byidentity [name=identity]", seed.email);
  await page.selectOption("#byidentity [name=range]", "24");
  await page.click("#byidentity button");
  await page.locator("#out button.more").waitFor();
  await shot("search", false);

  await page.fill("#byupdate [name=id]", seed.firstUpdate);
  await page.click("#byupdate button");
  const dead = page.locator("#out article.delivery", { hasText: "loyalty survey" });
  await dead.waitFor();
  await dead.locator("button.payloadbtn").click();
  await dead.locator("pre.payload").waitFor();
  await shot("timeline");
  await dead.locator("button.replay").click();
  await shot("replay-confirm", false);
  await page.click("#confirmcancel");

  await page.click("#tabs [data-tab=deadletters]");
  await page.selectOption("#dlform [name=destinationId]", { label: "loyalty survey" });
  await page.click("#dlform button");
  const rows = page.locator("#out table.results tbody tr");
  await rows.first().waitFor();
  await rows.nth(0).locator("input.pick").check();
  await rows.nth(1).locator("input.pick").check();
  await shot("deadletters", false);

  await page.click("#tabs [data-tab=destinations]");
  await page.locator("#destlist").getByRole("button", { name: "web nps" }).click();
  await page.locator("#out figure.chart").first().waitFor();
  await shot("destination");

  await page.click("#tabs [data-tab=alerts]");
  await page.locator("#out table.alerts").waitFor();
  await shot("alerts", false);
  console.log("screenshots written to " + out);
} finally {
  await browser.close();
  server.stdin.end();
}
