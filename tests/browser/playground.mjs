// The playground (GET /) in a real browser: Debian's chromium, driven headless by
// playwright-core (tools/). Run by tests/test_browser.c as
//   node tests/browser/playground.mjs BASE_URL [SCREENSHOT_DIR]
// Prints one "ok - ..." or "not ok - ..." line per check (the C test counts them) and exits 1
// when one failed. With SCREENSHOT_DIR it also saves the page at 1280x800 and at phone width.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tools/package.json"));
const { chromium } = require("playwright-core");

const [base, shots] = process.argv.slice(2);
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok" : "not ok"} - ${what}`);
  if (!ok) failures++;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  const posts = [];
  page.on("request", (r) => { if (r.method() === "POST") posts.push({ url: r.url(), body: r.postData() }); });
  // nothing but this server: the page must work offline
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  await page.goto(base + "/", { waitUntil: "load" });
  await page.waitForSelector('.tensor[data-tensor="y"] td', { timeout: 10000 });
  check(problems.length === 0, `the page loads without console errors (${problems.join("; ")})`);
  check(posts.some((p) => p.url.endsWith("/v1/conv2d/forward")) &&
        posts.some((p) => p.url.endsWith("/v1/conv2d/backward")),
        "the seed example is computed through POST /v1/conv2d/forward and /backward");
  const y00 = await page.textContent('.tensor[data-tensor="y"] td[data-k="0,0,0,0"]');
  check(y00 === "-10", `y[0, 0, 0, 0] of the seed example is -10 (README's Sobel example), got ${y00}`);

  // a y cell highlights exactly its window: seed example, 3x3 kernel, padding 1, stride 1
  await page.click('.tensor[data-tensor="y"] td[data-k="0,0,1,2"]');
  const window = await page.$$eval('.tensor[data-tensor="x"] td.hl', (tds) => tds.map((td) => td.dataset.k).sort());
  const want = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) want.push(`0,0,${1 + a - 1},${2 + b - 1}`);
  want.sort();
  check(JSON.stringify(window) === JSON.stringify(want), `y[0,0,1,2] highlights x rows 0-2, columns 1-3: ${window.join(" ")}`);
  const taps = await page.$$eval('.tensor[data-tensor="w"] td.hl-k', (tds) => tds.length);
  check(taps === 9, `and all 9 taps of w[0] (${taps})`);

  // keyboard: arrow keys move the selection within the y grid
  await page.focus('.tensor[data-tensor="y"] table');
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowDown");
  const sel = await page.$eval('.tensor[data-tensor="y"] td.sel', (td) => td.dataset.k);
  check(sel === "0,0,1,1", `arrow keys select y cells (${sel})`);

  // a dx cell shows the dy cells and kernel taps that reach it
  await page.click('.tensor[data-tensor="dx"] td[data-k="0,0,0,0"]');
  const dys = await page.$$eval('.tensor[data-tensor="dy"] td.hl-dy', (tds) => tds.map((td) => td.dataset.k).sort());
  check(JSON.stringify(dys) === JSON.stringify(["0,0,0,0", "0,0,0,1", "0,0,1,0", "0,0,1,1"]),
        `dx[0,0,0,0] is reached by dy[0..1, 0..1] (${dys.join(" ")})`);

  // a changed stride recomputes through the API
  posts.length = 0;
  await page.fill("#sh", "2");
  await page.waitForFunction(() => document.querySelectorAll('.tensor[data-tensor="y"] tr').length === 2, null, { timeout: 10000 });
  const fwd = posts.find((p) => p.url.endsWith("/v1/conv2d/forward"));
  check(fwd && JSON.parse(fwd.body).stride.join() === "2,1", "stride 2 is sent to POST /v1/conv2d/forward");
  const y10 = await page.textContent('.tensor[data-tensor="y"] td[data-k="0,0,1,0"]');
  check(y10 === "-40", `with stride (2, 1) y has 2 rows and y[0,0,1,0] = -40 (got ${y10})`);
  await page.click('.tensor[data-tensor="y"] td[data-k="0,0,1,0"]');
  const strided = await page.$$eval('.tensor[data-tensor="x"] td.hl', (tds) => tds.map((td) => td.dataset.k).sort());
  const want2 = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) want2.push(`0,0,${2 + a - 1},${b - 1}`);
  want2.sort();
  check(JSON.stringify(strided) === JSON.stringify(want2), `with stride 2, y[0,0,1,0] highlights x rows 1-3 (${strided.join(" ")})`);
  if (shots) await page.screenshot({ path: path.join(shots, "playground.png") });

  // the grading tab: a wrong dx shows its diagnosis and a heatmap
  await page.click("#tab-grade");
  await page.selectOption("#gmistake", "negate_dx");
  await page.click("#gright");
  await page.click("#ggrade");
  await page.waitForSelector(".report.failed", { timeout: 10000 });
  const failed = await page.$$eval(".report.failed h3", (hs) => hs.map((h) => h.textContent));
  const tags = await page.$$eval(".report.failed .tags span", (ss) => ss.map((s) => s.textContent));
  const cells = await page.$$eval(".report.failed svg.heatmap rect.wrong", (rs) => rs.length);
  const passed = await page.$$eval(".report.passed", (rs) => rs.length);
  check(failed.length === 1 && failed[0].startsWith("playground: dx") && tags.includes("sign_flipped") &&
        passed === 2, `a negated dx fails alone (y and dw pass), diagnosed sign_flipped (${failed.join()}; ${tags.join()}; ${passed} passed)`);
  check(cells > 0, `with a heatmap of its wrong cells (${cells})`);
  if (shots) await page.screenshot({ path: path.join(shots, "playground-grading.png"), fullPage: true });

  // phone width: nothing wider than the screen
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#tab-layer");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `readable at phone width: no sideways scrolling (${overflow} px too wide)`);
  if (shots) await page.screenshot({ path: path.join(shots, "playground-phone.png") });

  check(problems.length === 0, `no console errors after all that (${problems.join("; ")})`);
  check(foreign.length === 0, `no request leaves the server (${foreign.join(" ")})`);
} catch (e) {
  check(false, `the browser run: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
