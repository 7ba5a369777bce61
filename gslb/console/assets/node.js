// Meridian console, the DNS node's page: reads /api/v1/... and /metrics,
// and sends drains and weights with the typed token after a dry run.
"use strict";

(() => {
  const { el, fill, api, showError, clearError, every, views, tokenBox, stamp, rows, fmt, pct, age, since } = Console;
  const $ = (id) => document.getElementById(id);

  const answersMetric = "meridian_dns_dynamic_answers_total";
  // What the console costs the node is mostly these scrapes (docs/console.md).
  const metricsEvery = 5000; // ms between scrapes of /metrics
  const stateEvery = 5000; // ms between reads of regions, targets, cluster
  const keepSamples = 60; // 5 minutes of scrapes
  const samples = []; // {t, counts: Map(region -> answers)}
  let regions = [], targets = [], cluster = { members: [], vantages: [] }, records = [];
  let view = "overview";

  function regionState(r) {
    const total = r.targets_up + r.targets_down + r.targets_unknown;
    if (r.drained) return "drained";
    if (total === 0) return "unknown";
    if (r.targets_up === total) return "up";
    if (r.targets_up > 0) return "degraded";
    return r.targets_down > 0 ? "down" : "unknown";
  }

  // parseAnswers reads the per-region answer counters out of the
  // Prometheus text exposition format, label escapes included.
  function parseAnswers(text) {
    const counts = new Map();
    const re = new RegExp("^" + answersMetric + '\\{region="((?:[^"\\\\]|\\\\.)*)"\\} (\\S+)$');
    for (const line of text.split("\n")) {
      const m = re.exec(line);
      if (m) counts.set(m[1].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c)), Number(m[2]));
    }
    return counts;
  }

  async function scrape() {
    // name[] has the server write the one metric (it still gathers all).
    const text = await api("GET", "/metrics?" + new URLSearchParams({ "name[]": answersMetric }));
    samples.push({ t: Date.now(), counts: parseAnswers(text) });
    if (samples.length > keepSamples) samples.shift();
    if (view === "live") drawLive();
    if (view === "overview") drawOverview();
  }

  // rate is a region's answers per second between samples i-1 and i.
  function rate(i, region) {
    if (i < 1 || i >= samples.length) return NaN;
    const a = samples[i - 1], b = samples[i];
    const d = (b.counts.get(region) || 0) - (a.counts.get(region) || 0);
    return Math.max(0, d) / ((b.t - a.t) / 1000);
  }

  function latestCounts() {
    return samples.length ? samples[samples.length - 1].counts : new Map();
  }

  async function readState() {
    const needTargets = view === "health" || view === "actions";
    const [r, c, t] = await Promise.all([
      api("GET", "/api/v1/regions"), api("GET", "/api/v1/cluster"), needTargets ? api("GET", "/api/v1/targets") : targets,
    ]);
    regions = r; cluster = c; targets = t;
    clearError();
    stamp();
    if (view === "overview") drawOverview();
    if (view === "health") drawHealth();
    if (view === "actions") fillActionChoices();
  }

  // ---- Overview ----------------------------------------------------------

  function project(lat, lon) {
    return [lon + 180, 90 - lat];
  }

  function mark(cls, name, label, lat, lon, state) {
    const [x, y] = project(lat, lon);
    const right = x < 300;
    return el("svg:g", { class: "mark " + cls, "data-name": name, "data-state": state || "" },
      el("svg:title", null, label),
      el("svg:circle", { cx: x, cy: y, r: cls === "vantage" ? 2.5 : 4, class: state || "" }),
      el("svg:text", { x: right ? x + 6 : x - 6, y: y + 2.5, "text-anchor": right ? "start" : "end" }, label));
  }

  function drawOverview() {
    const counts = latestCounts();
    let total = 0;
    for (const v of counts.values()) total += v;
    const marks = regions.map((r) => {
      const st = regionState(r);
      return mark("region", r.name, r.name + " · " + st, r.lat, r.lon, st);
    });
    for (const m of cluster.members || []) {
      if (m.lat || m.lon) marks.push(mark("vantage", m.name, m.vantage || m.name, m.lat, m.lon, ""));
    }
    fill($("map-marks"), marks);
    const last = samples.length - 1;
    rows($("regions"), regions.map((r) => {
      const st = regionState(r);
      const all = r.targets_up + r.targets_down + r.targets_unknown;
      return [r.name, el("td", null, el("span", { className: "state " + st }, st)),
        r.targets_up + " / " + all, total ? pct((counts.get(r.name) || 0) / total) : "—",
        fmt(rate(last, r.name), 1), loadText(r.load)];
    }));
    drawMembers();
  }

  function loadText(load) {
    if (!load || !load.reports || !load.reports.length) return "not reported";
    return load.reports.map((x) => fmt(x.load, 0) + " " + x.unit + " (target " + fmt(x.target, 0) + ", " + x.forwarder + ")").join("; ");
  }

  function drawMembers() {
    const c = cluster;
    $("cluster-summary").textContent = c.enabled
      ? "Cluster " + (c.name || "") + ": " + (c.joined ? "joined" : "not joined") + ", quorum " + (c.quorum || "—") + ", " + (c.members || []).length + " members"
      : "This node runs alone (no cluster): it is its own vantage, local.";
    const vantageAge = new Map((c.vantages || []).map((v) => [v.name, v]));
    if (!(c.members || []).length) {
      rows($("members"), [[el("td", { colSpan: 6 }, "no members")]]);
      return;
    }
    rows($("members"), (c.members || []).map((m) => {
      const v = vantageAge.get(m.vantage);
      const ageText = m.since ? "lost " + age(since(m.since)) + " ago" : v ? "last heard " + age(v.age_s) + " ago" : "—";
      return [m.name, m.role, m.state, m.vantage || m.region || "—", m.version || "—", ageText];
    }));
  }

  // ---- Health matrix -----------------------------------------------------

  function drawHealth() {
    const suspects = new Set((cluster.vantages || []).filter((v) => v.suspect).map((v) => v.name));
    const names = [];
    for (const t of targets) for (const v of t.vantages) {
      if (!names.includes(v.vantage)) names.push(v.vantage);
      if (v.suspect) suspects.add(v.vantage);
    }
    names.sort();
    const table = $("matrix");
    fill(table.tHead, el("tr", null, el("th", { scope: "col" }, "Target"),
      names.map((n) => el("th", { scope: "col", className: suspects.has(n) ? "suspect" : "" }, n, suspects.has(n) ? " (suspect)" : "")),
      el("th", { scope: "col" }, "Verdict")));
    rows(table, targets.map((t) => {
      const byName = new Map(t.vantages.map((v) => [v.vantage, v]));
      const cells = names.map((n) => vantageCell(byName.get(n)));
      const verdict = el("td", null, el("span", { className: "state " + t.state }, t.state + (t.drained ? ", drained" : "")),
        el("div", { className: "small" }, votesText(t)),
        t.reason ? el("div", { className: "small" }, t.reason) : null);
      return [el("td", null, t.id), ...cells, verdict];
    }));
  }

  function votesText(t) {
    if (!t.vantages.length && !t.votes_needed_down) return "no votes: not checked (check type none) or not yet";
    return "votes up " + t.votes_up + ", down " + t.votes_down + ", needed to go down " + (t.votes_needed_down || 0) + (t.stale ? ", stale" : "");
  }

  function vantageCell(v) {
    if (!v) return el("td", { className: "cell-other" }, "—");
    const cls = v.state === "up" ? "cell-up" : v.state === "down" ? "cell-down" : "cell-other";
    return el("td", { className: cls }, el("span", { className: "state " + v.state }, v.state),
      v.rtt_ms ? " " + fmt(v.rtt_ms, 2) + " ms" : "",
      el("div", { className: "small" }, v.status + ", " + age(v.age_s) + " ago" + (v.suspect ? ", suspect" : "")),
      v.reason ? el("div", { className: "small" }, v.reason) : null);
  }

  // ---- Records -----------------------------------------------------------

  async function drawRecords() {
    [records, regions] = await Promise.all([api("GET", "/api/v1/records"), api("GET", "/api/v1/regions")]);
    const blocks = [];
    for (const rec of records) {
      const answers = await Promise.all(regions.map((r) => regionAnswer(rec, r)));
      blocks.push(el("div", { className: "record" },
        el("h3", null, rec.name + " " + rec.type),
        el("p", { className: "small" }, "policy " + rec.policy + ", select " + rec.select + ", TTL " + rec.ttl),
        el("div", { className: "scroll" }, el("table", null,
          el("thead", null, el("tr", null, ["Pool", "Region", "Weight", "Healthy", "Eligible", "Drained"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", null, rec.pools.map((p) => el("tr", null, el("td", null, p.pool), el("td", null, p.region), el("td", { className: "num" }, fmt(p.weight, 0)),
            el("td", null, p.healthy + " / " + p.total), el("td", null, p.eligible ? "yes" : "no"), el("td", null, p.drained ? "yes" : "no")))))),
        el("div", { className: "scroll" }, el("table", null,
          el("thead", null, el("tr", null, ["Clients of", "As", "Answer now", "From", "Outcome"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", null, answers)))));
    }
    fill($("records"), blocks.length ? blocks : el("p", null, "No dynamic records."));
    stamp();
  }

  async function regionAnswer(rec, r) {
    const client = (r.networks || [])[0];
    if (!client) return el("tr", null, el("td", null, r.name), el("td", { colSpan: 4 }, "no geo.network row names this region"));
    try {
      const x = await api("GET", "/api/v1/explain?" + new URLSearchParams({ name: rec.name, type: rec.type, client }));
      return el("tr", null, el("td", null, r.name), el("td", null, client), el("td", null, (x.answer || []).join(", ") || "(none)"),
        el("td", null, x.region || x.pool || "—"), el("td", null, x.outcome));
    } catch (e) {
      return el("tr", null, el("td", null, r.name), el("td", null, client), el("td", { colSpan: 3 }, e.message));
    }
  }

  // ---- Explain -----------------------------------------------------------

  async function explain(e) {
    e.preventDefault();
    const q = new URLSearchParams({ name: $("explain-name").value.trim(), type: $("explain-type").value, client: $("explain-client").value.trim() });
    const out = $("explain-out");
    try {
      const x = await api("GET", "/api/v1/explain?" + q);
      fill(out, explainView(x));
    } catch (err) {
      fill(out, el("p", { className: "error", role: "alert" }, err.message));
    }
  }

  function explainView(x) {
    const dl = el("dl", { className: "decision" },
      el("dt", null, "Outcome"), el("dd", { id: "explain-outcome" }, x.outcome),
      el("dt", null, "Answer"), el("dd", { id: "explain-answer" }, (x.answer || []).join(", ") || "(none)"),
      el("dt", null, "From pool"), el("dd", null, (x.pool || "—") + " in " + (x.region || "—")),
      el("dt", null, "TTL, ECS scope"), el("dd", null, x.ttl + " s, /" + x.scope + (x.scope_network ? " (" + x.scope_network + ")" : "")),
      el("dt", null, "Policy"), el("dd", null, x.policy + ", select " + x.target_policy),
      el("dt", null, "Located by"), el("dd", null, (x.geo || []).map((g) => g.source + (g.network ? " " + g.network : "") + (g.region ? " → " + g.region : "") + (g.country ? " " + g.country : "")).join("; ") || "—"));
    const cands = el("div", { className: "scroll" }, el("table", null,
      el("thead", null, el("tr", null, ["#", "Pool", "Region", "Healthy", "Eligible", "Drained", "Weight"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", null, (x.candidates || []).map((c, i) => el("tr", null, el("td", null, String(i + 1)), el("td", null, c.pool), el("td", null, c.region),
        el("td", null, c.healthy + " / " + c.total), el("td", null, c.eligible ? "yes" : "no"), el("td", null, c.drained ? "yes" : "no"), el("td", null, fmt(c.weight, 0)))))));
    const raw = el("details", null, el("summary", null, "The whole decision (JSON)"), el("pre", null, JSON.stringify(x, null, 2)));
    return [el("h3", null, x.record + " for this client"), dl, el("h3", null, "Pools in the policy's order"), cands, raw];
  }

  // ---- Actions -----------------------------------------------------------

  function option(value, text, selected) {
    const o = el("option", { value }, text);
    o.selected = value === selected;
    return o;
  }

  function fillActionChoices() {
    const keep = (id) => $(id).value;
    const r = keep("act-region-name"), t = keep("act-target-id"), p = keep("act-pool-id");
    fill($("act-region-name"), regions.map((x) => option(x.name, x.name + (x.drained ? " (drained)" : ""), r)));
    fill($("act-target-id"), targets.map((x) => option(x.id, x.id + (x.drained ? " (drained)" : ""), t)));
    const pools = [];
    for (const rec of records) for (const pool of rec.pools) {
      pools.push(option(JSON.stringify([rec.name, rec.type, pool.pool]), rec.name + " " + rec.type + " · " + pool.pool + " (weight " + pool.weight + ")", p));
    }
    fill($("act-pool-id"), pools);
  }

  const seg = encodeURIComponent;

  // change is the request an action's button makes: method, path, body.
  function change(form, op) {
    if (form.id === "act-region") {
      const name = $("act-region-name").value;
      return { what: (op === "drain" ? "Drain" : "Undrain") + " region " + name, method: op === "drain" ? "POST" : "DELETE", path: "/api/v1/regions/" + seg(name) + "/drain" };
    }
    if (form.id === "act-target") {
      const id = $("act-target-id").value, cut = id.indexOf("/");
      const base = "/api/v1/targets/" + seg(id.slice(0, cut)) + "/" + seg(id.slice(cut + 1));
      if (op === "drain" || op === "undrain") return { what: (op === "drain" ? "Drain" : "Undrain") + " target " + id, method: op === "drain" ? "POST" : "DELETE", path: base + "/drain" };
      return weightChange("target " + id, base + "/weight", op, $("act-target-weight"));
    }
    const [name, type, pool] = JSON.parse($("act-pool-id").value || "[]");
    return weightChange("pool " + pool + " of " + name + " " + type, "/api/v1/records/" + seg(name) + "/" + seg(type) + "/pools/" + seg(pool) + "/weight", op, $("act-pool-weight"));
  }

  function weightChange(what, path, op, input) {
    if (op === "unweight") return { what: "Restore the configured weight of " + what, method: "DELETE", path };
    const weight = Number(input.value);
    return { what: "Set the weight of " + what + " to " + weight, method: "PUT", path, body: { weight } };
  }

  let pending = null;

  async function propose(e) {
    e.preventDefault();
    const op = e.submitter && e.submitter.dataset.op;
    if (!op) return;
    const c = change(e.target, op);
    $("act-result").textContent = "";
    try {
      const diff = await api(c.method, c.path + "?dry_run=true", c.body);
      pending = c;
      $("confirm-title").textContent = c.what + "?";
      fill($("confirm-diff"), diffView(diff));
      $("confirm").hidden = false;
      $("confirm-yes").focus();
    } catch (err) {
      $("act-result").textContent = "Dry run refused: " + err.message;
    }
  }

  function diffView(d) {
    const out = [];
    for (const r of d.records || []) {
      const moves = (r.moves || []).map((m) => el("li", null, m.clients + " client network(s) move from " + (m.from.region || m.from.outcome) + " to " + (m.to.region || m.to.outcome) +
        (m.examples && m.examples.length ? " (e.g. " + m.examples.join(", ") + ")" : "")));
      const shares = (r.shares || []).filter((s) => s.before !== s.after).map((s) => el("li", null, s.region + ": " + pct(s.before) + " → " + pct(s.after)));
      if (!moves.length && !shares.length) continue;
      out.push(el("h4", null, r.name + " " + r.type), el("ul", null, moves, shares));
    }
    for (const g of d.guards_broken || []) out.push(el("p", { className: "error" }, "Breaks guard " + (g.name || g.guard || JSON.stringify(g))));
    return out.length ? out : [el("p", null, "No client would get another answer.")];
  }

  async function confirmChange() {
    const c = pending;
    pending = null;
    $("confirm").hidden = true;
    if (!c) return;
    try {
      const res = await api(c.method, c.path, c.body, true);
      $("act-result").textContent = "Done: " + c.what + " (" + JSON.stringify(res) + ")";
      await readState();
      records = await api("GET", "/api/v1/records");
      fillActionChoices();
    } catch (err) {
      $("act-result").textContent = "Refused: " + err.message;
    }
  }

  // ---- Live --------------------------------------------------------------

  function drawLive() {
    const names = [...new Set(samples.flatMap((s) => [...s.counts.keys()]))].sort();
    const chart = $("live-chart");
    const W = 600, H = 200, pad = 24;
    let peak = 1;
    const series = names.map((n) => samples.map((_, i) => rate(i, n)));
    for (const s of series) for (const v of s) if (v > peak) peak = v;
    const x = (i) => pad + (W - 2 * pad) * (i / Math.max(1, keepSamples - 1));
    const y = (v) => H - pad - (H - 2 * pad) * (v / peak);
    const parts = [el("svg:title", { id: "live-title" }, "Answers per second by region"),
      el("svg:line", { class: "axis", x1: pad, y1: H - pad, x2: W - pad, y2: H - pad }),
      el("svg:text", { x: 2, y: pad }, fmt(peak, 1) + "/s"), el("svg:text", { x: 2, y: H - pad }, "0")];
    series.forEach((s, k) => {
      const pts = s.map((v, i) => (Number.isFinite(v) ? x(i + keepSamples - samples.length).toFixed(1) + "," + y(v).toFixed(1) : null)).filter(Boolean);
      parts.push(el("svg:polyline", { class: "s" + (k % 6), points: pts.join(" ") }, el("svg:title", null, names[k])));
    });
    fill(chart, parts);
    const last = samples.length - 1;
    rows($("live-table"), names.map((n, k) => [el("td", null, el("span", { className: "dot k" + (k % 6) }), n),
      fmt(rate(last, n), 1), fmt(Math.max(0, ...series[k].filter(Number.isFinite)), 1), fmt(latestCounts().get(n) || 0, 0)]));
  }

  // ---- Start -------------------------------------------------------------

  async function onShow(name) {
    view = name;
    try {
      if (name === "records") await drawRecords();
      if (name === "actions" && !records.length) records = await api("GET", "/api/v1/records");
      if (name !== "explain" && name !== "records") await readState();
      if (name === "live") drawLive();
    } catch (e) {
      showError(e);
    }
  }

  tokenBox();
  $("explain-form").addEventListener("submit", explain);
  for (const id of ["act-region", "act-target", "act-pool"]) $(id).addEventListener("submit", propose);
  $("confirm-yes").addEventListener("click", confirmChange);
  $("confirm-no").addEventListener("click", () => { pending = null; $("confirm").hidden = true; $("act-result").textContent = "Cancelled."; });
  $("records-refresh").addEventListener("click", () => drawRecords().catch(showError));
  views("overview", onShow);
  every(metricsEvery, scrape);
  every(stateEvery, () => (view === "overview" || view === "health" ? readState() : undefined));
})();
