// Drives webchat/index.html in Debian's headless Chromium with playwright-core.
// Called by tests/components/channels/test_webchat.py:
//   node webchat_driver.mjs <page url> <out dir> <scripted message> <open-ended message>
// Prints one JSON object: what the page showed at each step (each bot message's text,
// and the links a cited reply shows, the socket.io transport in use) and what another
// browser showed with the session's id and token, and with the id and a forged token.
// Exits 1 on any failure.
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

const messages = (page) => page.$$eval(".msg", (els) => els.map((e) => e.textContent));
const online = (page) => page.waitForSelector('#status[data-state="online"]', { timeout: TIMEOUT });

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
  await page.goto(pageUrl);
  await online(page);
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
  const transcript = await messages(page);

  // The upgrade from polling follows the connection within a moment.
  await page.waitForFunction(() => document.body.dataset.transport === "websocket", null,
    { timeout: 10_000 }).catch(() => {});
  const transport = await page.evaluate(() => document.body.dataset.transport);
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("kestrel-webchat")));

  await page.reload();
  await online(page);
  const restored = await messages(page);
  const restoredLinks = await botLinks(page);
  const restoredSessionId = await page.evaluate(() => document.body.dataset.sessionId);
  const [afterReload] = await say(page, scripted);
  await page.screenshot({ path: path.join(outDir, "webchat-after-reload.png") });

  // Another device (a browser with nothing stored) opened with the session's id and token,
  // then with the id and a forged token.
  const elsewhere = async (token) => {
    const context = await browser.newContext();
    const other = await context.newPage();
    await other.goto(`${pageUrl}#session=${encodeURIComponent(sessionId)}&token=${token}`);
    await online(other);
    const shown = { messages: await messages(other),
      sessionId: await other.evaluate(() => document.body.dataset.sessionId) };
    await context.close();
    return shown;
  };
  const otherDevice = await elsewhere(stored.sessionToken);
  const forged = await elsewhere("0".repeat(64));

  console.log(JSON.stringify({ sessionId, scriptedReply, scriptedLinks, generatedReply,
    generatedLinks, buttons, afterRating, transcript, transport, stored, restored, restoredLinks,
    restoredSessionId, afterReload, otherDevice, forged }));
} finally {
  await browser.close();
}
