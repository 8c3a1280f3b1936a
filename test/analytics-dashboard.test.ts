// The admin dashboard (GET /admin/dashboard) in a real headless browser: Debian's Chromium driven by
// puppeteer-core. An admin signs in through the page's form, the charts render from /admin/analytics, the
// figures on the page are the API's, the page refreshes by itself, and no script error or CSP violation
// happens on the way. Chromium is required: without it this file fails (it never skips).
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEMO_USERS } from "../scripts/stack/seed-users.ts";
import { adminToken, api, baseUrl, freshIp, newTrader, PASSWORD, type Trader } from "./client.ts";

// This file trades DYNA only.
const SYMBOL = "DYNA";
const CANDIDATES = [
  process.env.CHROMIUM_PATH,
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
];
const chromium = CANDIDATES.find((p): p is string => typeof p === "string" && existsSync(p));

let browser: Browser;
let admin: string;
let seller: Trader;
let buyer: Trader;

interface Report {
  totals: Record<string, number | string>;
  volume_by_symbol: { symbol: string; fills: number }[];
}

const report = async () =>
  (await api<Report>("GET", "/admin/analytics?interval=1m", { token: admin, ip: freshIp() })).body;

beforeAll(async () => {
  if (!chromium) {
    throw new Error(
      "the dashboard test needs Chromium: run `apt-get install -y chromium` (.ci/run does it as root) " +
        "or set CHROMIUM_PATH to a Chromium or Chrome binary",
    );
  }
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"],
  });
  admin = await adminToken();
  [seller, buyer] = await Promise.all([newTrader("dash-seller"), newTrader("dash-buyer")]);
  const grant = await api("POST", `/admin/users/${seller.id}/grants`, {
    token: admin,
    ip: freshIp(),
    body: { symbol: SYMBOL, qty: "10", price: "12.34" },
  });
  expect(grant.status).toBe(200);
  const order = (t: Trader, side: string, qty: string) =>
    t.call("POST", "/v2/orders", {
      symbol: SYMBOL,
      side,
      type: "limit",
      time_in_force: "gtc",
      qty,
      limit_price: "12.34",
    });
  expect((await order(seller, "sell", "4")).status).toBe(200);
  expect((await order(buyer, "buy", "4")).status).toBe(200);
  // The consumer has counted the trade once the report shows it.
  await vi.waitFor(
    async () =>
      expect((await report()).volume_by_symbol.find((s) => s.symbol === SYMBOL)?.fills).toBeGreaterThan(0),
    { timeout: 30_000, interval: 500 },
  );
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([seller, buyer].map((t) => t?.call("DELETE", "/v2/orders")));
});

/** A page that records every script error, console error and CSP violation. */
async function openDashboard(): Promise<{ page: Page; problems: string[]; csp: string | undefined }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${(err as Error).message ?? String(err)}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("requestfailed", (req) => problems.push(`requestfailed: ${req.url()} ${req.failure()?.errorText}`));
  const res = await page.goto(`${baseUrl}/admin/dashboard`, { waitUntil: "load" });
  expect(res?.status()).toBe(200);
  return { page, problems, csp: res?.headers()["content-security-policy"] };
}

/** What the page drew (run in the page; a string, as this project compiles without the DOM library). */
const DRAWN = `(() => {
  const charts = [...document.querySelectorAll("figure.chart")].map((f) => ({
    id: f.id,
    lines: [...f.querySelectorAll("path.series")].filter((p) => /^M[0-9.]+ [0-9.]+/.test(p.getAttribute("d") || "") && p.getAttribute("d") !== "M0 0").length,
    bars: f.querySelectorAll("rect.bar").length,
  }));
  const figures = Object.fromEntries(
    [...document.querySelectorAll("[data-figure]")].map((n) => [n.getAttribute("data-figure"), n.getAttribute("data-value")]),
  );
  const symbols = [...document.querySelectorAll("#table-symbols tbody td[data-key]")].map((n) => n.getAttribute("data-key"));
  const routes = document.querySelectorAll("#table-routes tbody tr").length;
  return { charts, figures, symbols, routes };
})()`;
interface Drawn {
  charts: { id: string; lines: number; bars: number }[];
  figures: Record<string, string | null>;
  symbols: string[];
  routes: number;
}

async function signIn(page: Page, email: string, password: string) {
  await page.waitForSelector("#login-form input[name=email]", { visible: true });
  await page.type("#login-form input[name=email]", email);
  await page.type("#login-form input[name=password]", password);
  await page.click("#login-form button[type=submit]");
}

describe("the admin dashboard", { timeout: 90_000 }, () => {
  it("signs an admin in, draws the platform figures from the API and refreshes them live", async () => {
    const { page, problems, csp } = await openDashboard();
    expect(csp).toMatch(/script-src 'nonce-[^']+'/);
    expect(csp).toContain("connect-src 'self'");
    const adminUser = DEMO_USERS.find((u) => u.role === "admin");
    if (!adminUser) throw new Error("no seeded admin");
    await signIn(page, adminUser.email, adminUser.password);
    await page.waitForFunction("Number(document.body.dataset.renders) >= 1", { timeout: 20_000 });

    const drawn = (await page.evaluate(DRAWN)) as Drawn;
    // Every line chart has a drawn series; the tables are filled.
    for (const id of ["chart-activity", "chart-volume", "chart-users", "chart-latency", "chart-calls"]) {
      expect(drawn.charts.find((c) => c.id === id)?.lines, id).toBeGreaterThan(0);
    }
    expect(drawn.symbols).toContain(SYMBOL);
    expect(drawn.routes).toBeGreaterThan(0);

    // The figures on the page are the API's (the window is the same last hour; trading has stopped).
    const api = await report();
    for (const name of ["orders", "fills", "rejections", "active_users", "notional"]) {
      expect(drawn.figures[name], name).toBe(String(api.totals[name]));
    }
    expect(Number(drawn.figures.api_calls)).toBeGreaterThan(0);

    // Live: the page fetches again by itself.
    const first = await page.evaluate("document.body.dataset.generatedAt");
    await page.waitForFunction(
      `Number(document.body.dataset.renders) >= 2 && document.body.dataset.generatedAt !== ${JSON.stringify(first)}`,
      { timeout: 20_000 },
    );
    expect(problems).toEqual([]);
    // DASHBOARD_SCREENSHOT=path.png keeps a picture of the page (for docs and reviews).
    if (process.env.DASHBOARD_SCREENSHOT) {
      await page.setViewport({ width: 1400, height: 1000 });
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT as `${string}.png`, fullPage: true });
    }
    await page.close();
  });

  it("tells a trader who signs in that the figures are for admins, without a script error", async () => {
    const trader = await newTrader("dash-trader");
    const { page, problems } = await openDashboard();
    await signIn(page, trader.email, PASSWORD);
    await page.waitForFunction(
      'document.querySelector("#login-error").textContent.includes("not an admin")',
      {
        timeout: 20_000,
      },
    );
    expect(await page.evaluate('document.querySelector("#board").hidden')).toBe(true);
    // The 403 the page handled is the only failed request; it is not a script error.
    expect(problems.filter((p) => !p.includes("403"))).toEqual([]);
    await page.close();
  });
});
