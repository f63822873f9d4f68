// Drives the dashboard in a real headless Chromium (playwright-core, pinned in
// dashboard/package-lock.json) against a running operator; e2e/test_dashboard.py starts the
// cluster and runs this. Prints one JSON line {"checks": [...], "failures": [...]} and exits 1
// on any failure.
//
// Environment: TAILOR_URL (the operator's API), KUBECONFIG (admin, for the kubectl change made
// behind the page's back), APPROVER_TOKEN, LIVE_REC and APPROVE_REC ("ns/name"), EXPECTED_RECS
// (comma-separated "ns/name"), SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
"use strict";

const path = require("path");
const fs = require("fs");
const os = require("os");
const { execFileSync } = require("child_process");

const ROOT = path.resolve(__dirname, "..", "..");
const { chromium } = require(path.join(ROOT, "dashboard", "node_modules", "playwright-core"));

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error("missing environment variable " + name);
  return v;
};

const checks = [];
const failures = [];
function check(name, ok, detail) {
  (ok ? checks : failures).push(detail ? name + ": " + detail : name);
}

function kubectl(...args) {
  return execFileSync("kubectl", args, { env: process.env, encoding: "utf8", timeout: 30000 });
}

async function main() {
  const url = env("TAILOR_URL");
  const shots = env("SCREENSHOT_DIR");
  const [liveNs, liveName] = env("LIVE_REC").split("/");
  const [apNs, apName] = env("APPROVE_REC").split("/");
  const expected = env("EXPECTED_RECS").split(",");
  fs.mkdirSync(shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tailor-chromium-"));
  // A fresh profile each run (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1360, height: 900 },
    timeout: 30000,
  });
  const problems = [];
  try {
    const page = browser.pages()[0] || await browser.newPage();
    page.setDefaultTimeout(20000);
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
    const outside = [];
    page.on("request", (r) => { if (!r.url().startsWith(url) && !r.url().startsWith(url.replace("http", "ws"))) outside.push(r.url()); });

    // Overview: totals and savings per namespace.
    await page.goto(url + "/");
    await page.waitForFunction(() => /\$/.test(document.getElementById("total-savings").textContent));
    const nsRows = await page.locator("#by-namespace tbody tr").count();
    check("overview shows savings per namespace", nsRows >= 5, nsRows + " namespaces");
    await page.waitForSelector("#live.on");
    check("the WebSocket connects", true);
    await page.screenshot({ path: path.join(shots, "overview.png"), fullPage: true });

    // The table lists the demo's Recommendations.
    await page.click('nav a[data-view="recommendations"]');
    await page.waitForSelector("#recs-table tbody tr");
    const keys = await page.$$eval("#recs-table tbody tr", (rows) => rows.map((r) => r.dataset.key));
    const missing = expected.filter((k) => !keys.includes(k));
    check("the table lists every Recommendation", missing.length === 0,
      keys.length + " rows" + (missing.length ? ", missing " + missing.join(" ") : ""));
    // Filters and sorting.
    await page.selectOption("#f-namespace", "shop");
    const shopOnly = await page.$$eval("#recs-table tbody tr", (rows) => rows.every((r) => r.dataset.key.startsWith("shop/")) && rows.length > 0);
    check("the namespace filter keeps only its rows", shopOnly);
    await page.selectOption("#f-namespace", "");
    await page.click('#recs-table th[data-key="name"]');
    const names = await page.$$eval("#recs-table tbody tr", (rows) => rows.map((r) => r.dataset.key.split("/")[1]));
    check("sorting by name orders the rows", names.join() === [...names].sort().join());
    await page.click('#recs-table th[data-key="savings"]');
    await page.screenshot({ path: path.join(shots, "recommendations.png"), fullPage: true });

    // A change made with kubectl shows without a reload.
    await page.evaluate(() => { window.__notReloaded = true; });
    const liveKey = liveNs + "/" + liveName;
    const rev = JSON.parse(kubectl("get", "rec", "-n", liveNs, liveName, "-o", "json")).status.revision;
    kubectl("patch", "rec", "-n", liveNs, liveName, "--type", "merge", "-p",
      JSON.stringify({ spec: { approval: { approvedRevision: rev } } }));
    await page.waitForFunction(([key, r]) => {
      const row = document.querySelector('#recs-table tr[data-key="' + key + '"] td.approved');
      return row && row.textContent === String(r);
    }, [liveKey, rev]);
    check("a kubectl approval shows live", await page.evaluate(() => window.__notReloaded === true),
      liveKey + " approved column = " + rev);

    // Approve as an allowed user, through the token dialog.
    const apKey = apNs + "/" + apName;
    const apRev = JSON.parse(kubectl("get", "rec", "-n", apNs, apName, "-o", "json")).status.revision;
    await page.click('#recs-table tr[data-key="' + apKey + '"] button');
    await page.waitForSelector("#token-dialog[open]");
    await page.fill("#token-input", env("APPROVER_TOKEN"));
    await page.click("#token-ok");
    await page.waitForSelector("#approve-dialog[open]");
    await page.screenshot({ path: path.join(shots, "approve-dialog.png") });
    await page.click("#approve-ok");
    await page.waitForSelector("#toast.ok:not([hidden])");
    const toast = await page.textContent("#toast");
    check("approving shows who approved", /system:serviceaccount:shop:approver/.test(toast), toast);
    await page.waitForFunction(([key, r]) => {
      const row = document.querySelector('#recs-table tr[data-key="' + key + '"] td.approved');
      return row && row.textContent === String(r);
    }, [apKey, apRev]);
    check("the approved row updates", true, apKey + " approved " + apRev);

    // The workload page: a chart of usage against current and recommended requests.
    await page.goto(url + "/#/workload/shop/Deployment/web");
    await page.waitForSelector(".chart canvas");
    await page.waitForFunction(() => document.querySelectorAll(".chart canvas").length >= 2);
    const samples = await page.$$eval(".chart", (charts) => charts.map((c) => Number(c.dataset.samples)));
    check("the charts have usage points", samples.length >= 2 && samples.every((n) => n > 10),
      samples.join(","));
    const inked = await page.$eval(".chart canvas", (canvas) => {
      const ctx = canvas.getContext("2d");
      const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
      return n;
    });
    check("the chart canvas is drawn", inked > 1000, inked + " painted pixels");
    const legend = await page.$$eval(".chart .u-legend .u-label", (ls) => ls.map((l) => l.textContent));
    check("the chart shows current and recommended requests",
      legend.includes("current request") && legend.includes("recommended request"), legend.join("|"));
    await page.screenshot({ path: path.join(shots, "workload.png"), fullPage: true });

    // NodePool plans, when there are NodePool Recommendations.
    await page.click('nav a[data-view="nodepools"]');
    await page.waitForSelector('#pools-table tbody tr[data-key]');
    const pools = await page.$$eval("#pools-table tbody tr[data-key]", (rows) =>
      rows.map((r) => r.dataset.key + " " + r.cells[2].textContent));
    check("NodePool plans are listed",
      pools.some((p) => p.startsWith("tailor-system/nodepool-general ") && / → /.test(p)),
      pools.join("; "));
    await page.screenshot({ path: path.join(shots, "nodepools.png") });

    check("no request left the operator", outside.length === 0, outside.join(" "));
    check("no script error or CSP violation", problems.length === 0, problems.join(" | "));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => {
  console.log(JSON.stringify({ checks, failures }));
  process.exit(failures.length ? 1 : 0);
}, (e) => {
  failures.push("error: " + (e && e.stack ? e.stack : e));
  console.log(JSON.stringify({ checks, failures }));
  process.exit(1);
});
