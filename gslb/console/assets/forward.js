// Meridian console, the forwarder's page: pools and backends, listeners,
// routes and canaries, from the forwarder's admin API.
"use strict";

(() => {
  const { el, fill, api, showError, clearError, every, views, tokenBox, stamp, fmt, pct } = Console;
  const $ = (id) => document.getElementById(id);
  const refreshEvery = 5000; // ms
  let view = "pools";

  function th(...names) {
    return el("thead", null, el("tr", null, names.map((n) => el("th", { scope: "col" }, n))));
  }

  function poolBlock(p) {
    return el("div", { className: "record", "data-pool": p.pool },
      el("h3", null, p.pool),
      el("p", { className: "small" }, p.status + ": " + p.healthy + " of " + p.total + " healthy (needs " + p.min_healthy + "), balance " + p.balance +
        (p.panic ? ", PANIC: spreading over all backends" : "") + ", refused " + fmt(p.refused_connections, 0)),
      el("div", { className: "scroll" }, el("table", null,
        th("Backend", "State", "Weight", "Active", "Connections", "Errors", "HTTP errors", "Last check", ""),
        el("tbody", null, (p.backends || []).map((b) => backendRow(p, b))))));
  }

  function backendRow(p, b) {
    const drained = b.state === "draining";
    const btn = el("button", { type: "button" }, drained ? "Undrain" : "Drain");
    btn.addEventListener("click", () => drain(p.pool, b.address, !drained));
    const check = b.last_check ? (b.last_check.ok ? "ok" : "failed") + (b.last_check.rtt_ms ? " " + fmt(b.last_check.rtt_ms, 2) + " ms" : "") + ", " + (b.last_check.reason || "") : "—";
    return el("tr", null, el("td", null, b.address), el("td", null, el("span", { className: "state " + b.state }, b.state),
      b.draining && b.draining.length ? el("div", { className: "small" }, b.draining.join(", ")) : null),
      el("td", { className: "num" }, fmt(b.effective_weight, 0) + " / " + fmt(b.weight, 0)),
      el("td", { className: "num" }, fmt(b.active_connections, 0)), el("td", { className: "num" }, fmt(b.connections, 0)),
      el("td", { className: "num" }, fmt(b.connect_errors, 0)), el("td", { className: "num" }, fmt(b.http_errors, 0)),
      el("td", null, check), el("td", null, btn));
  }

  async function drain(pool, addr, on) {
    const what = (on ? "Drain" : "Undrain") + " backend " + addr + " of pool " + pool;
    if (!window.confirm(what + "?")) return;
    try {
      await api(on ? "POST" : "DELETE", "/api/v1/pools/" + encodeURIComponent(pool) + "/backends/" + encodeURIComponent(addr) + "/drain", undefined, true);
      $("act-result").textContent = "Done: " + what;
      await refresh();
    } catch (err) {
      $("act-result").textContent = "Refused: " + err.message;
    }
  }

  function listenerBlock(l) {
    return el("div", { className: "record" },
      el("h3", null, l.name + " (" + l.protocol + ", " + (l.address || "") + ")"),
      el("div", { className: "scroll" }, el("table", null,
        th("Route", "Pool", "Requests", "p50", "p99", "Rate limited", "Canary"),
        el("tbody", null, (l.routes || []).map(routeRow)))));
  }

  function routeRow(r) {
    const req = Object.entries(r.requests || {}).map(([k, v]) => k + ": " + fmt(v, 0)).join(", ") || "0";
    return el("tr", null, el("td", null, r.name), el("td", null, r.pool || r.redirect || r.respond || "—"), el("td", null, req),
      el("td", { className: "num" }, fmt(r.p50_ms, 2) + " ms"), el("td", { className: "num" }, fmt(r.p99_ms, 2) + " ms"),
      el("td", { className: "num" }, fmt(r.rate_limited, 0)), el("td", null, canaryText(r.canary)));
  }

  function canaryText(c) {
    if (!c) return "—";
    const lines = [el("div", null, c.canary + " takes " + fmt(c.percent, 1) + "%" + (c.runtime ? " (set at runtime)" : "") + " of " + c.pool + "'s requests"),
      el("div", { className: "small" }, "baseline " + fmt(c.baseline_requests, 0) + ", canary " + fmt(c.canary_requests, 0) + " requests")];
    const g = c.guard;
    if (g) {
      lines.push(el("div", { className: g.tripped ? "suspect" : "small" }, "guard: " + (g.tripped ? "TRIPPED, " + (g.reason || "") : "watching") +
        "; 5xx " + pct(g.baseline.error_rate) + " vs " + pct(g.canary.error_rate) + ", p99 " + fmt(g.baseline.p99_ns / 1e6, 1) + " vs " + fmt(g.canary.p99_ns / 1e6, 1) + " ms"));
    }
    return el("div", null, lines);
  }

  async function refresh() {
    if (view === "pools") {
      const pools = await api("GET", "/api/v1/pools");
      fill($("pools"), pools.length ? pools.map(poolBlock) : el("p", null, "No pools."));
    } else {
      const ls = await api("GET", "/api/v1/listeners");
      fill($("listeners"), ls.length ? ls.map(listenerBlock) : el("p", null, "No http listeners."));
    }
    clearError();
    stamp();
  }

  tokenBox();
  views("pools", (name) => { view = name; refresh().catch(showError); });
  every(refreshEvery, refresh);
})();
