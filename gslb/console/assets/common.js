// Meridian console: what both pages share. Every string from the API goes
// into the page as text (textContent, text nodes), never as markup.
"use strict";

const Console = (() => {
  const tokenKey = "meridian-admin-token";

  // el makes an element: props are set as properties (className, type...)
  // or, for names with a dash or SVG, as attributes; children are nodes or
  // strings, which become text nodes.
  function el(tag, props, ...children) {
    const svg = tag.startsWith("svg:");
    const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") || k.endsWith("HTML")) throw new Error("el: no handlers or markup through props");
      if (svg || k.includes("-")) node.setAttribute(k, String(v));
      else node[k] = v;
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // fill replaces a container's children.
  function fill(parent, ...children) {
    parent.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
  }

  function token() {
    return sessionStorage.getItem(tokenKey) || "";
  }

  // api calls the admin API; a change sends the token typed in the
  // header. It resolves to the decoded JSON (or text) and rejects with the
  // API's own error message.
  async function api(method, path, body, withToken) {
    const headers = {};
    if (withToken && token()) headers.Authorization = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    const text = await resp.text();
    let data = text;
    if ((resp.headers.get("Content-Type") || "").startsWith("application/json")) {
      try { data = JSON.parse(text); } catch (e) { data = text; }
    }
    if (!resp.ok) {
      const msg = data && data.error ? data.error : text;
      throw new Error(resp.status + " " + resp.statusText + ": " + msg);
    }
    return data;
  }

  const errorBox = () => document.getElementById("error");

  function showError(err) {
    const box = errorBox();
    box.textContent = String(err && err.message ? err.message : err);
    box.hidden = false;
  }

  function clearError() {
    errorBox().hidden = true;
  }

  // every runs fn now and then every ms, skipping while the tab is hidden
  // (a console left in a background tab costs the server nothing).
  function every(ms, fn) {
    const run = async () => {
      if (document.hidden) return;
      try { await fn(); } catch (e) { showError(e); }
    };
    run();
    setInterval(run, ms);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) run(); });
  }

  // views shows the section named by the location's hash, marks its link,
  // and tells onShow which view is now on.
  function views(first, onShow) {
    const show = () => {
      const name = (location.hash || "#" + first).slice(1);
      const target = document.getElementById("view-" + name) ? name : first;
      for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + target;
      for (const a of document.querySelectorAll("nav a")) {
        if (a.getAttribute("href") === "#" + target) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      if (onShow) onShow(target);
    };
    window.addEventListener("hashchange", () => { show(); document.getElementById("main").focus(); });
    show();
  }

  // tokenBox keeps the typed token in sessionStorage: this tab only, gone
  // when it closes.
  function tokenBox() {
    const input = document.getElementById("token");
    input.value = token();
    input.addEventListener("input", () => sessionStorage.setItem(tokenKey, input.value.trim()));
    document.getElementById("token-form").addEventListener("submit", (e) => e.preventDefault());
    document.getElementById("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(tokenKey);
      input.value = "";
    });
  }

  function stamp() {
    document.getElementById("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  }

  // table fills a table's body with rows of cells; a cell is a value or
  // a node.
  function rows(table, list) {
    fill(table.tBodies[0], list.map((cells) => el("tr", null, cells.map((c) => (c instanceof Node && c.tagName === "TD") ? c : el("td", null, c)))));
  }

  function fmt(n, digits) {
    if (n === undefined || n === null || Number.isNaN(n)) return "—";
    return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 1 : digits });
  }

  function pct(x) {
    return Number.isFinite(x) ? fmt(100 * x, 1) + "%" : "—";
  }

  function age(seconds) {
    if (!Number.isFinite(seconds)) return "—";
    if (seconds < 120) return fmt(seconds, 0) + " s";
    if (seconds < 7200) return fmt(seconds / 60, 0) + " min";
    return fmt(seconds / 3600, 1) + " h";
  }

  function since(iso) {
    if (!iso) return NaN;
    return (Date.now() - Date.parse(iso)) / 1000;
  }

  return { el, fill, api, showError, clearError, every, views, tokenBox, stamp, rows, fmt, pct, age, since, token };
})();
