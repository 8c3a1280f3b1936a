/**
 * The admin reporting dashboard served at `GET /admin/dashboard` (docs/analytics.md): one self-contained
 * HTML page (no CDN, no build step) that signs in through the public auth API, fetches
 * `GET /admin/analytics` with the admin's bearer token every few seconds, and draws the platform figures as
 * inline SVG charts.
 *
 * Authentication: the page itself holds no data and is served to anyone; everything it shows comes from
 * `/admin/analytics`, which requires an admin. The page signs in with `POST /v1/auth/login`, keeps the
 * access and refresh tokens in `sessionStorage` (this tab only, gone when it closes; never a cookie, so no
 * CSRF surface), refreshes the access token with `POST /v1/auth/refresh` when it expires, and signs out
 * with `POST /v1/auth/logout`. A strict Content-Security-Policy with a per-response nonce allows only the
 * page's own script and style and same-origin requests.
 */

/** Seconds between two refreshes of the figures. */
export const DASHBOARD_REFRESH_SECONDS = 5;

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6570;--line:#d6dbe1;--card:#f6f8fa;--accent:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa5b1;--line:#30363d;--card:#161b22;--accent:#4493f8}}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;margin:0;color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;padding:.8rem 1.2rem;border-bottom:1px solid var(--line)}
h1{font-size:1.1rem;margin:0}h2{font-size:.95rem;margin:.2rem 0 .5rem}
main,#login{padding:1rem 1.2rem;max-width:90rem;margin:0 auto}
#status{color:var(--muted);font-size:.85rem}#status.error{color:#cf222e}
form.inline{display:flex;gap:.6rem;align-items:center}
#login form{display:grid;gap:.6rem;max-width:22rem}input,select,button{font:inherit;padding:.3rem .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.7rem;margin-bottom:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
.card .label{display:block;color:var(--muted);font-size:.8rem}.card .value{font-size:1.35rem;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:1rem}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:.6rem}
figcaption{font-weight:600;margin-bottom:.3rem}svg{width:100%;height:auto;display:block}
svg text{fill:var(--muted);font-size:10px}svg .grid{stroke:var(--line);stroke-width:1}
svg .series{fill:none;stroke-width:1.8}.legend{display:flex;flex-wrap:wrap;gap:.8rem;font-size:.8rem;color:var(--muted)}
.swatch{display:inline-block;width:.8rem;height:.25rem;margin-right:.3rem;vertical-align:middle}
.tables{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:1rem;margin-top:1rem}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:.25rem .4rem;text-align:right}th:first-child,td:first-child{text-align:left}
td.route{font-family:ui-monospace,monospace;font-size:.8rem}
#table-routes{grid-column:1/-1;overflow-x:auto}
`;

const COLORS = ["#0969da", "#1a7f37", "#cf222e", "#8250df", "#bf8700", "#0a7ea4", "#d4367a", "#57606a"];

// Plain ES2017 (no template literals), so it can live in this TypeScript template string.
const SCRIPT = `
(function () {
  "use strict";
  var REFRESH_MS = __REFRESH_MS__;
  var COLORS = __COLORS__;
  var WINDOWS = { "15m": ["1m", 15], "1h": ["1m", 60], "6h": ["5m", 360], "24h": ["15m", 1440], "7d": ["1h", 10080], "30d": ["1d", 43200] };
  var SVG = "http://www.w3.org/2000/svg";
  var store = window.sessionStorage;
  var state = { renders: 0, timer: null, report: null };
  var $ = function (id) { return document.getElementById(id); };

  function setStatus(text, isError) {
    var s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }
  function tokens() { return { access: store.getItem("prepx.access"), refresh: store.getItem("prepx.refresh") }; }
  function saveTokens(t) { store.setItem("prepx.access", t.access_token); store.setItem("prepx.refresh", t.refresh_token); }
  function clearTokens() { store.removeItem("prepx.access"); store.removeItem("prepx.refresh"); }

  function postJson(path, body, token) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }

  function showLogin(message) {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    $("board").hidden = true;
    $("controls").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setStatus("signed out", false);
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("controls").hidden = false;
    tick();
  }

  function refreshTokens() {
    var t = tokens();
    if (!t.refresh) return Promise.resolve(false);
    return postJson("/v1/auth/refresh", { refresh_token: t.refresh }).then(function (res) {
      if (!res.ok) return false;
      return res.json().then(function (body) { saveTokens(body); return true; });
    });
  }

  function fetchReport(retried) {
    var w = WINDOWS[$("window").value] || WINDOWS["1h"];
    var from = new Date(Date.now() - w[1] * 60000).toISOString();
    var url = "/admin/analytics?interval=" + w[0] + "&from=" + encodeURIComponent(from);
    return fetch(url, { headers: { Authorization: "Bearer " + tokens().access } }).then(function (res) {
      if (res.status === 401 && !retried) {
        return refreshTokens().then(function (ok) {
          if (!ok) { clearTokens(); showLogin("Your session has ended; sign in again."); return null; }
          return fetchReport(true);
        });
      }
      if (res.status === 401) { clearTokens(); showLogin("Your session has ended; sign in again."); return null; }
      if (res.status === 403) { clearTokens(); showLogin("This account is not an admin."); return null; }
      if (!res.ok) throw new Error("GET /admin/analytics answered " + res.status);
      return res.json();
    });
  }

  function tick() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    if (!tokens().access) { showLogin(""); return; }
    fetchReport(false).then(function (report) {
      if (!report) return;
      render(report);
      setStatus("updated " + new Date().toLocaleTimeString() + " · every " + REFRESH_MS / 1000 + " s", false);
    }).catch(function (err) {
      setStatus(String(err && err.message || err), true);
    }).then(function () {
      if (!$("board").hidden && !$("pause").checked) state.timer = setTimeout(tick, REFRESH_MS);
    });
  }

  // --- rendering ------------------------------------------------------------------------------------

  function el(name, attrs, text) {
    var node = name.indexOf("svg:") === 0 ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
    for (var k in attrs || {}) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function num(v) { return v === null || v === undefined ? null : Number(v); }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    var n = Number(v);
    if (!isFinite(n)) return String(v);
    return Math.abs(n) >= 1000 ? n.toLocaleString("en-US", { maximumFractionDigits: 0 }) : String(Math.round(n * 100) / 100);
  }
  function shortTime(iso, interval) {
    var d = new Date(iso);
    if (interval === "1d") return d.toISOString().slice(5, 10);
    return d.toISOString().slice(11, 16);
  }

  /** A line chart: series [{name, values}] over the report's buckets. */
  function lineChart(id, report, series) {
    var fig = $(id);
    var svg = fig.querySelector("svg");
    var legend = fig.querySelector(".legend");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    while (legend.firstChild) legend.removeChild(legend.firstChild);
    var W = 600, H = 200, L = 44, R = 8, T = 8, B = 22;
    var n = report.buckets.length;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { var x = num(v); if (x !== null && x > max) max = x; }); });
    if (max === 0) max = 1;
    var x = function (i) { return L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    for (var g = 0; g <= 4; g++) {
      var gv = (max * g) / 4;
      svg.appendChild(el("svg:line", { class: "grid", x1: L, x2: W - R, y1: y(gv), y2: y(gv) }));
      svg.appendChild(el("svg:text", { x: L - 4, y: y(gv) + 3, "text-anchor": "end" }, fmt(gv)));
    }
    var ticks = Math.min(6, n);
    for (var t = 0; t < ticks; t++) {
      var i = ticks <= 1 ? 0 : Math.round((t * (n - 1)) / (ticks - 1));
      var anchor = t === 0 ? "start" : t === ticks - 1 ? "end" : "middle";
      svg.appendChild(el("svg:text", { x: x(i), y: H - 6, "text-anchor": anchor }, shortTime(report.buckets[i], report.interval)));
    }
    series.forEach(function (s, k) {
      var color = COLORS[k % COLORS.length];
      var d = "";
      var pen = false;
      s.values.forEach(function (v, i) {
        var value = num(v);
        if (value === null) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(value).toFixed(1);
        pen = true;
      });
      var path = el("svg:path", { class: "series", d: d || "M0 0", stroke: color, "data-series": s.name });
      svg.appendChild(path);
      // A value with no neighbour draws no line: mark it with a dot.
      s.values.forEach(function (v, i) {
        if (num(v) === null || num(s.values[i - 1]) !== null || num(s.values[i + 1]) !== null) return;
        svg.appendChild(el("svg:circle", { class: "point", cx: x(i).toFixed(1), cy: y(num(v)).toFixed(1), r: 2.5, fill: color }));
      });
      var item = el("span", {}, "");
      var swatch = el("span", { class: "swatch" });
      swatch.style.background = color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name));
      legend.appendChild(item);
    });
    fig.setAttribute("data-points", String(n));
  }

  /** Horizontal bars: rows [{label, count}]. */
  function barChart(id, rows) {
    var fig = $(id);
    var svg = fig.querySelector("svg");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 600, rowH = 22, L = 200;
    var shown = rows.slice(0, 8);
    var H = Math.max(4, shown.length) * rowH + 6;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var max = shown.reduce(function (m, r) { return Math.max(m, r.count); }, 1);
    if (shown.length === 0) svg.appendChild(el("svg:text", { x: 4, y: 16 }, "none in this window"));
    shown.forEach(function (r, i) {
      var w = ((W - L - 60) * r.count) / max;
      svg.appendChild(el("svg:text", { x: L - 6, y: i * rowH + 15, "text-anchor": "end" }, r.label));
      svg.appendChild(el("svg:rect", { class: "bar", x: L, y: i * rowH + 4, width: Math.max(1, w), height: rowH - 8, fill: COLORS[2] }));
      svg.appendChild(el("svg:text", { x: L + w + 6, y: i * rowH + 15 }, String(r.count)));
    });
  }

  function table(id, columns, rows) {
    var tbody = $(id).querySelector("tbody");
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    rows.forEach(function (r) {
      var tr = el("tr");
      columns.forEach(function (c, i) {
        var td = el("td", c === "route" ? { class: "route" } : {}, r[c] === null || r[c] === undefined ? "–" : String(r[c]));
        if (i === 0) td.setAttribute("data-key", String(r[c]));
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  function figure(name, value) {
    var node = document.querySelector("[data-figure='" + name + "']");
    if (node) { node.textContent = fmt(value); node.setAttribute("data-value", value === null ? "" : String(value)); }
  }

  function render(r) {
    state.report = r;
    var p95 = r.routes.length ? r.series.api_p95_ms.filter(function (v) { return v !== null; }) : [];
    figure("orders", r.totals.orders);
    figure("fills", r.totals.fills);
    figure("rejections", r.totals.rejections);
    figure("active_users", r.totals.active_users);
    figure("notional", r.totals.notional);
    figure("api_calls", r.totals.api_calls);
    figure("api_p95_ms", p95.length ? p95[p95.length - 1] : null);
    lineChart("chart-activity", r, [
      { name: "orders", values: r.series.orders },
      { name: "fills", values: r.series.fills },
      { name: "rejections", values: r.series.rejections },
    ]);
    lineChart("chart-users", r, [
      { name: "active users", values: r.series.active_users },
      { name: "active bots", values: r.series.active_bots },
    ]);
    lineChart("chart-volume", r, r.volume_by_symbol.slice(0, 6).map(function (s) {
      return { name: s.symbol, values: s.series.notional };
    }).concat(r.volume_by_symbol.length ? [] : [{ name: "notional", values: r.series.notional }]));
    lineChart("chart-latency", r, [
      { name: "p50 ms", values: r.series.api_p50_ms },
      { name: "p95 ms", values: r.series.api_p95_ms },
      { name: "p99 ms", values: r.series.api_p99_ms },
    ]);
    lineChart("chart-calls", r, [
      { name: "API calls", values: r.series.api_calls },
      { name: "4xx", values: r.series.api_client_errors },
      { name: "5xx", values: r.series.api_server_errors },
    ]);
    barChart("chart-rejections", r.rejection_reasons.map(function (x) { return { label: x.reason, count: x.count }; })
      .concat(r.refused_orders.map(function (x) { return { label: "refused: " + x.code, count: x.count }; }))
      .sort(function (a, b) { return b.count - a.count; }));
    table("table-symbols", ["symbol", "orders", "fills", "volume", "notional"], r.volume_by_symbol);
    table("table-routes", ["route", "method", "calls", "client_errors", "server_errors", "p50_ms", "p95_ms", "p99_ms"], r.routes);
    state.renders += 1;
    document.body.setAttribute("data-renders", String(state.renders));
    document.body.setAttribute("data-generated-at", r.generated_at);
  }

  // --- wiring ---------------------------------------------------------------------------------------

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    $("login-error").textContent = "";
    postJson("/v1/auth/login", { email: form.email.value, password: form.password.value }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) { $("login-error").textContent = body.message || ("sign-in failed (" + res.status + ")"); return; }
        saveTokens(body);
        form.password.value = "";
        showBoard();
      });
    }).catch(function (err) { $("login-error").textContent = String(err && err.message || err); });
  });
  $("window").addEventListener("change", tick);
  $("pause").addEventListener("change", function () { if (!$("pause").checked) tick(); });
  $("logout").addEventListener("click", function () {
    var t = tokens();
    if (t.access && t.refresh) postJson("/v1/auth/logout", { refresh_token: t.refresh }, t.access).catch(function () {});
    clearTokens();
    showLogin("");
  });

  if (tokens().access) showBoard(); else showLogin("");
})();
`;

const escapeAttr = (s: string) => s.replace(/[^A-Za-z0-9+/=_-]/g, "");

function chart(id: string, title: string, height = 200): string {
  return `<figure class="chart" id="${id}"><figcaption>${title}</figcaption>
<svg viewBox="0 0 600 ${height}" role="img" aria-label="${title}"></svg><div class="legend"></div></figure>`;
}

function card(figure: string, label: string): string {
  return `<div class="card"><span class="label">${label}</span><span class="value" data-figure="${figure}">–</span></div>`;
}

/** The dashboard page; `nonce` must also be in the response's Content-Security-Policy. */
export function dashboardHtml(nonce: string): string {
  const n = escapeAttr(nonce);
  const script = SCRIPT.replace("__REFRESH_MS__", String(DASHBOARD_REFRESH_SECONDS * 1000)).replace(
    "__COLORS__",
    JSON.stringify(COLORS),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>PrepX Edge · platform analytics</title><link rel="icon" href="data:,">
<style nonce="${n}">${STYLE}</style></head>
<body data-renders="0">
<header><h1>PrepX Edge · platform analytics</h1>
<form id="controls" class="inline" hidden>
<label>Window <select id="window"><option>15m</option><option selected>1h</option><option>6h</option><option>24h</option><option>7d</option><option>30d</option></select></label>
<label><input type="checkbox" id="pause"> pause</label>
<button type="button" id="logout">Sign out</button></form>
<div id="status" role="status">loading…</div></header>
<section id="login" hidden><h2>Sign in as an admin</h2>
<form id="login-form" method="post" action="#">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button><p id="login-error" role="alert"></p></form></section>
<main id="board" hidden>
<section class="cards">
${card("orders", "Orders")}${card("fills", "Fills")}${card("rejections", "Rejections")}${card("active_users", "Active users")}
${card("notional", "Notional (USD)")}${card("api_calls", "API calls")}${card("api_p95_ms", "API p95 (ms, last)")}
</section>
<section class="charts">
${chart("chart-activity", "Orders, fills and rejections per interval")}
${chart("chart-volume", "Traded notional by symbol (USD)")}
${chart("chart-users", "Active users")}
${chart("chart-latency", "API latency percentiles (all routes)")}
${chart("chart-calls", "API calls and errors")}
${chart("chart-rejections", "Rejection reasons")}
</section>
<section class="tables">
<figure id="table-symbols"><figcaption>Volume by symbol</figcaption><table>
<thead><tr><th>Symbol</th><th>Orders</th><th>Fills</th><th>Volume</th><th>Notional</th></tr></thead><tbody></tbody></table></figure>
<figure id="table-routes"><figcaption>Latency per route</figcaption><table>
<thead><tr><th>Route</th><th>Method</th><th>Calls</th><th>4xx</th><th>5xx</th><th>p50</th><th>p95</th><th>p99</th></tr></thead><tbody></tbody></table></figure>
</section>
</main>
<script nonce="${n}">${script}</script>
</body></html>`;
}

/** The Content-Security-Policy of the page: its own nonce'd script and style, same-origin requests only. */
export function dashboardCsp(nonce: string): string {
  const n = escapeAttr(nonce);
  return [
    "default-src 'none'",
    `script-src 'nonce-${n}'`,
    `style-src 'nonce-${n}'`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}
