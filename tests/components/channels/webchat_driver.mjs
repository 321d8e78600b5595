// Drives webchat/index.html in Debian's headless Chromium with playwright-core.
// Called by tests/components/channels/test_webchat.py:
//   node webchat_driver.mjs <page url> <out dir> <scripted message> <open-ended message>
// Prints one JSON object: what the page showed at each step (each bot message's text,
// and the links a cited reply shows). Exits 1 on any failure.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";

// playwright-core is installed with the page's packages (webchat/package.json).
const require = createRequire(new URL("../../../webchat/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [pageUrl, outDir, scripted, openEnded] = process.argv.slice(2);
const TIMEOUT = 60_000; // ms: a generated reply on a busy 2-core machine
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"];

const botTexts = (page) => page.$$eval(".msg.bot", (els) => els.map((e) => e.textContent));
// Every link in the bot messages from the `from`-th on, as the page built it.
const botLinks = (page, from = 0) => page.$$eval(".msg.bot", (els, n) => els.slice(n)
  .flatMap((e) => [...e.querySelectorAll("a")])
  .map((a) => ({ href: a.getAttribute("href"), text: a.textContent, target: a.target, rel: a.rel,
    line: a.parentElement.textContent })), from);

// The bot messages (texts) the page showed after `text` was sent, and their links.
async function say(page, text) {
  const before = (await botTexts(page)).length;
  await page.fill("#message", text);
  await page.press("#message", "Enter");
  await page.waitForFunction((n) => document.querySelectorAll(".msg.bot").length > n, before,
    { timeout: TIMEOUT });
  await page.waitForTimeout(300); // a reply can come in several messages
  return [(await botTexts(page)).slice(before), await botLinks(page, before)];
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
});
try {
  mkdirSync(outDir, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 560, height: 720 } });
  // The page's console and failed requests go to stderr: the test shows them on failure.
  page.on("console", (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("requestfailed", (r) => console.error(`[request failed] ${r.url()} ${r.failure()?.errorText}`));
  const online = () => page.waitForSelector('#status[data-state="online"]', { timeout: TIMEOUT });
  await page.goto(pageUrl);
  await online();
  const sessionId = await page.evaluate(() => document.body.dataset.sessionId);

  const [scriptedReply, scriptedLinks] = await say(page, scripted);
  const [generatedReply, generatedLinks] = await say(page, openEnded);
  const buttons = await page.$$eval(".buttons button", (els) => els.map((e) => e.textContent));
  await page.screenshot({ path: path.join(outDir, "webchat.png") });

  const before = (await botTexts(page)).length;
  await page.click('.buttons button:text-is("Helpful")');
  await page.waitForFunction((n) => document.querySelectorAll(".msg.bot").length > n, before,
    { timeout: TIMEOUT });
  const afterRating = (await botTexts(page)).slice(before);
  const transcript = await page.$$eval(".msg", (els) => els.map((e) => e.textContent));

  await page.reload();
  await online();
  const restored = await page.$$eval(".msg", (els) => els.map((e) => e.textContent));
  const restoredLinks = await botLinks(page);
  const restoredSessionId = await page.evaluate(() => document.body.dataset.sessionId);
  const [afterReload] = await say(page, scripted);
  await page.screenshot({ path: path.join(outDir, "webchat-after-reload.png") });

  console.log(JSON.stringify({ sessionId, scriptedReply, scriptedLinks, generatedReply,
    generatedLinks, buttons, afterRating, transcript, restored, restoredLinks, restoredSessionId,
    afterReload }));
} finally {
  await browser.close();
}
