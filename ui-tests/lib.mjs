// Shared by the browser tests and the documentation's screenshots: the seeded node and the
// browser.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..");

// startServer runs ./server (go run) and resolves with [process, the JSON line it prints]. The
// server stops when its stdin ends: call proc.stdin.end().
export function startServer(...args) {
  return new Promise((resolve, reject) => {
    const p = spawn("go", ["run", "./ui-tests/server", ...args], { cwd: repo, stdio: ["pipe", "pipe", "inherit"] });
    let buf = "";
    p.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve([p, JSON.parse(buf.slice(0, nl))]);
    });
    p.on("exit", (code) => reject(new Error("ui test server exited with " + code)));
  });
}

// launch starts Debian's headless Chromium (CHROMIUM, default /usr/bin/chromium) with a fresh
// profile directory; close() also removes the directory.
export async function launch() {
  const profileDir = mkdtempSync(path.join(tmpdir(), "qgate-ui-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  return { context, close: async () => { await context.close(); rmSync(profileDir, { recursive: true, force: true }); } };
}

// signIn opens /ui and gives it the support key.
export async function signIn(page, seed) {
  await page.goto(seed.url + "/ui");
  await page.fill("#key", seed.supportKey);
  await page.click("#keyform button");
  await page.locator("#byidentity .destselect option", { hasText: "loyalty survey" }).waitFor({ state: "attached" });
}
