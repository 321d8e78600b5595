// Drives the console in Debian's headless Chromium with playwright-core.
// Called by tests/components/console/test_console_browser.py:
//   node console_driver.mjs <console url> <out dir> <lead> <lead password> <reviewer> <reviewer password>
// A lead logs in, finds a conversation with a generated turn, corrects the reply,
// builds the dataset and reads the correction count; then opens a conversation whose
// customer message is HTML; a reviewer logs in and tries to promote. Prints one JSON
// object with what the pages showed; saves screenshots. Exits 1 on any failure.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";

// playwright-core is installed with the web chat's packages (webchat/package.json).
const require = createRequire(new URL("../../../webchat/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [base, outDir, lead, leadPassword, reviewer, reviewerPassword] = process.argv.slice(2);
const CORRECTION = "We sell gift cards of 25, 50 and 100 dollars, and they never expire.";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"];
const text = (page, selector) => page.textContent(selector).then((t) => (t || "").trim());

async function logIn(page, name, password) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="name"]', name);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForNavigation(), page.click('#login button[type="submit"]')]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", headless: true, args: FLAGS,
});
const result = { dialogs: [], consoleErrors: [] };
try {
  mkdirSync(outDir, { recursive: true });
  const leadContext = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await leadContext.newPage();
  page.on("dialog", async (d) => { result.dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") result.consoleErrors.push(m.text()); });

  await page.goto(`${base}/conversations`);
  result.anonymousLandedOn = new URL(page.url()).pathname;
  await page.screenshot({ path: path.join(outDir, "console-login.png") });
  await logIn(page, lead, leadPassword);
  result.afterLogin = new URL(page.url()).pathname;

  // The list, filtered to conversations with generated turns; open the not-helpful one.
  await page.check('input[name="generated"]');
  await page.selectOption('select[name="rating"]', "not_helpful");
  await Promise.all([page.waitForNavigation(), page.click('#filters button[type="submit"]')]);
  result.filteredTotal = await text(page, "#total");
  await page.screenshot({ path: path.join(outDir, "console-conversations.png") });
  await Promise.all([page.waitForNavigation(), page.click("#conversations td a")]);
  result.conversationUrl = new URL(page.url()).pathname;
  result.generationTags = await page.$$eval(".msg.generated .generation .tag",
    (els) => els.map((e) => e.textContent.trim()));

  // Correct the generated reply and name the article that should have answered.
  await page.fill(".msg.generated textarea[name=corrected_reply]", CORRECTION);
  await page.fill(".msg.generated input[name=article]", "buying-gift-cards");
  await Promise.all([page.waitForNavigation(),
    page.click('.msg.generated button[value="corrected"]')]);
  result.flash = await text(page, ".flash");
  result.reviewStatus = await text(page, ".msg.generated .review-status");
  await page.screenshot({ path: path.join(outDir, "console-conversation.png"), fullPage: true });

  // Build the dataset and wait for the job (the page refreshes itself while it runs).
  await page.goto(`${base}/dataset`);
  await Promise.all([page.waitForNavigation(), page.click("#job-dataset")]);
  result.jobUrl = new URL(page.url()).pathname;
  await page.waitForSelector('#status[data-status="succeeded"], #status[data-status="failed"]',
    { timeout: 180_000 });
  result.jobStatus = await text(page, "#status");
  await page.screenshot({ path: path.join(outDir, "console-job.png") });
  await page.goto(`${base}/dataset`);
  result.correctionsUsed = await text(page, "#corrections-used");
  result.corrected = await text(page, "#corrected");
  await page.screenshot({ path: path.join(outDir, "console-dataset.png") });

  // A customer message that is HTML: shown as text, never run.
  await page.goto(`${base}/conversations?q=script`);
  await Promise.all([page.waitForNavigation(), page.click("#conversations td a")]);
  await page.waitForTimeout(500);
  result.xssShown = await text(page, ".msg.user .text");
  result.xssRan = await page.evaluate(() => window.__xss ?? null);
  result.injectedImages = await page.$$eval("#transcript img", (els) => els.length);

  await page.goto(`${base}/review`);
  await page.screenshot({ path: path.join(outDir, "console-review.png"), fullPage: true });
  await page.goto(`${base}/analytics`);
  await page.screenshot({ path: path.join(outDir, "console-analytics.png"), fullPage: true });

  // A reviewer sees promote disabled; a forced click is refused by the server.
  const reviewerContext = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const other = await reviewerContext.newPage();
  await logIn(other, reviewer, reviewerPassword);
  await other.goto(`${base}/models`);
  result.promoteDisabled = await other.$eval("#job-promote", (b) => b.disabled);
  await other.$eval("#job-promote", (b) => { b.disabled = false; });
  const [response] = await Promise.all([other.waitForNavigation(), other.click("#job-promote")]);
  result.forcedPromoteStatus = response.status();
  result.forcedPromoteMessage = await text(other, "#error");
  await other.goto(`${base}/audit`);
  result.reviewerAuditStatus = await other.textContent("h1");
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
