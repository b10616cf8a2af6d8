// The console end to end: starts a real `fgs serve` ($FGS_BIN) on a free port, then drives
// /console in headless Chromium: sign in with an AK/SK (the browser signs every request),
// create a function, invoke it from the test panel and see its result and log, look at its
// code, invocations and charts. Screenshots go to $FGS_CONSOLE_SHOTS (default
// target/console-screenshots). Exits non-zero on the first failed check.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../../..");
const bin = process.env.FGS_BIN || join(root, "target/debug/fgs");
const chrome = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = process.env.FGS_CONSOLE_SHOTS || join(root, "target/console-screenshots");
mkdirSync(shots, { recursive: true });

const port = await new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
});
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), "fgs-console-"));
const [AK, SK, PROJECT] = ["CONSOLEAK0000000TEST", "console-secret-key-for-tests-only", "0123456789abcdef0123456789abcdef"];
const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--sandbox", "off",
  "--access-key", AK, "--secret-key", SK, "--project-id", PROJECT], { stdio: ["ignore", "ignore", "pipe"] });
let serverLog = "";
server.stderr.on("data", (d) => (serverLog += d));

let browser;
let step = "start";
const check = (cond, what) => { if (!cond) throw new Error(`check failed: ${what}`); console.log(`ok - ${what}`); };
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch {}
    if (i > 100) throw new Error("fgs did not start:\n" + serverLog);
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({
    executablePath: chrome,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  step = "load";
  const t0 = Date.now();
  await page.goto(`${base}/console/`, { waitUntil: "load" });
  await page.waitForSelector("#lf");
  const loadMs = Date.now() - t0;
  // Every byte the first view fetched: the document and its script and style files.
  const bytes = await page.evaluate(() => performance.getEntries()
    .filter((e) => e.entryType === "navigation" || e.entryType === "resource")
    .reduce((n, e) => n + e.encodedBodySize, 0));
  console.log(`# console page weight ${bytes} bytes, load ${loadMs} ms`);
  check(bytes > 0 && bytes < 64 * 1024, `console weighs under 64 KB (${bytes} bytes)`);
  await page.screenshot({ path: join(shots, "1-login.png") });

  step = "fallback signer";
  // The pure-JS SHA-256/HMAC used where Web Crypto is missing (plain HTTP off loopback) must
  // agree with Web Crypto on awkward lengths (block boundaries, keys over 64 bytes).
  const agree = await page.evaluate(async () => {
    const te = new TextEncoder();
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
    for (const n of [0, 55, 56, 64, 65, 1000]) {
      const msg = te.encode("m".repeat(n));
      for (const kl of [1, 64, 100]) {
        const key = te.encode("k".repeat(kl));
        const ck = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        if (hex(await crypto.subtle.sign("HMAC", ck, msg)) !== hex(fgsSign.hmacjs(key, msg))) return `hmac ${n}/${kl}`;
      }
      if (hex(await crypto.subtle.digest("SHA-256", msg)) !== hex(fgsSign.sha256js(msg))) return `sha ${n}`;
    }
    return "ok";
  });
  check(agree === "ok", `the fallback SHA-256/HMAC agrees with Web Crypto (${agree})`);

  step = "wrong secret";
  await page.fill("input[name=project]", PROJECT);
  await page.fill("input[name=ak]", AK);
  await page.fill("input[name=sk]", "not-the-secret");
  await page.click("button[type=submit]");
  await page.waitForSelector(".msg");
  check((await page.textContent(".msg")).includes("FSS.0401"), "a wrong secret key is refused with FSS.0401");

  step = "login";
  await page.fill("input[name=project]", PROJECT);
  await page.fill("input[name=ak]", AK);
  await page.fill("input[name=sk]", SK);
  await page.click("button[type=submit]");
  await page.waitForSelector("#q");
  check(await page.evaluate(() => !!sessionStorage.getItem("fgs.cred") && !localStorage.length), "the credential is in sessionStorage only");

  step = "create";
  await page.click("text=Create function");
  await page.fill("input[name=func_name]", "console-hello");
  await page.selectOption("select[name=runtime]", "Python3.9");
  await page.fill("textarea[name=code]", [
    "import json",
    "def handler(event, context):",
    "    context.getLogger().info('console says hi to ' + event.get('who', '?'))",
    "    return {'greeting': 'hello ' + event.get('who', '?')}",
    "",
  ].join("\n"));
  await page.click("button[type=submit]");
  await page.waitForSelector("#run");

  step = "invoke";
  await page.fill("#evt", '{"who": "chromium"}');
  await page.click("#run");
  await page.waitForSelector("#out:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#sum").textContent.includes("duration"));
  const result = await page.textContent("#res");
  const log = await page.textContent("#log");
  check(result.includes('"greeting": "hello chromium"'), "the test panel shows the result");
  check(log.includes("console says hi to chromium"), "the test panel shows the log tail");
  check((await page.textContent("#st")).includes("success"), "the invocation is marked success");
  const summary = await page.textContent("#sum");
  check(/duration [\d.]+ ms/.test(summary), "the test panel shows the duration");
  const requestId = summary.match(/request (\S+)/)[1];
  await page.fill("#evname", "chromium-event");
  await page.click("#save");
  await page.waitForFunction(() => document.querySelector("#sum").textContent.includes("saved event"));
  await page.screenshot({ path: join(shots, "3-test-panel.png"), fullPage: true });

  step = "list";
  await page.goto(`${base}/console/#/functions`);
  await page.fill("#q", "console");
  await page.waitForSelector("text=console-hello");
  await page.fill("#q", "no-such-function");
  await page.waitForSelector("text=No function matches.");
  await page.fill("#q", "");
  await page.screenshot({ path: join(shots, "2-functions.png") });

  step = "code";
  await page.goto(`${base}/console/#/fn/default/console-hello/code`);
  await page.waitForFunction(() => document.querySelector("#src")?.textContent.includes("def handler"));
  check(true, "the code view shows index.py");
  await page.screenshot({ path: join(shots, "4-code.png") });

  step = "invocations";
  // Stored logs are written off the invocation's path: give them a moment.
  for (let i = 0; i < 20; i++) {
    await page.goto(`${base}/console/#/fn/default/console-hello/invocations`);
    await page.waitForFunction(() => document.querySelector("#ilist") && !document.querySelector("#ilist").textContent.includes("Loading"));
    if (await page.$("#inv")) break;
    await page.waitForTimeout(250);
  }
  await page.waitForFunction(() => document.querySelector("#ilog")?.textContent.includes("console says hi"));
  check(true, "recent invocations show their stored log");
  await page.fill("#rid", requestId);
  await page.click("#find");
  await page.waitForFunction((id) => document.querySelectorAll("#inv tr.click").length === 1 && document.querySelector("#inv").textContent.includes(id), requestId);
  await page.fill("#rid", "no-such-request");
  await page.click("#find");
  await page.waitForSelector("text=No invocation with that request id.");
  check(true, "invocations are found by request id");
  await page.fill("#rid", "");
  await page.click("#find");
  await page.waitForSelector("#inv");
  await page.screenshot({ path: join(shots, "5-invocations.png") });

  step = "monitoring";
  await page.goto(`${base}/console/#/fn/default/console-hello/monitoring`);
  await page.waitForSelector(".chart svg polyline");
  check((await page.textContent(".chart h3")).includes("sum 1"), "the invocations chart counts the one invocation");
  await page.screenshot({ path: join(shots, "6-monitoring.png") });

  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
  console.log(`# screenshots in ${shots}`);
} catch (e) {
  console.error(`not ok - ${step}: ${e.message}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  rmSync(dataDir, { recursive: true, force: true });
}
