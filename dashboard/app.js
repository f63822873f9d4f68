// Tailor's dashboard: plain JavaScript over the operator's REST API (/api/v1) and its WebSocket
// (/api/v1/watch). Served by the tailor binary itself; no framework, no network beyond the
// operator. Every value from the API is written with textContent, never as HTML.
"use strict";

(function () {
  const API = "/api/v1";
  const TOKEN_KEY = "tailor.token";
  const PHASES = ["Pending", "Approved", "Applying", "Applied", "UpToDate", "RolledBack",
                  "Failed", "Blocked"];

  const state = {
    recs: new Map(),        // "ns/name" -> list item
    summary: null,
    sort: { key: "savings", dir: -1 },
    view: "overview",
    workload: null,         // { ns, kind, name } on the workload page
    charts: [],
    socket: null,
    retry: 1000,
    summaryTimer: null,
  };

  const $ = (id) => document.getElementById(id);
  const BYTE_STEPS = Array.from({ length: 24 }, (_, i) => 2 ** (i + 16));

  // ---- Formatting ----

  const money = (usd) => (usd == null ? "–" :
    (usd < 0 ? "−$" : "$") + Math.abs(usd).toLocaleString("en-US",
      { minimumFractionDigits: 2, maximumFractionDigits: 2 }));

  function cores(v) {
    if (v == null) return "–";
    if (v === 0) return "0";
    return v < 1 ? Math.round(v * 1000) + "m" : (Math.round(v * 100) / 100) + "";
  }

  function bytes(v) {
    if (v == null) return "–";
    const units = [["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]];
    for (const [unit, size] of units) {
      if (Math.abs(v) >= size) return (Math.round((v / size) * 10) / 10) + unit;
    }
    return Math.round(v) + "";
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function phaseBadge(phase) {
    const p = phase || "Unknown";
    return el("span", { class: "badge phase-" + p.toLowerCase(), text: p });
  }

  function showNotice(text) {
    const n = $("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }

  let toastTimer = null;
  function toast(text, kind) {
    const t = $("toast");
    t.textContent = text;
    t.className = "toast " + (kind || "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // ---- The API ----

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, options) {
    const headers = Object.assign({ Accept: "application/json" }, (options || {}).headers);
    if (token()) headers.Authorization = "Bearer " + token();
    const res = await fetch(API + path, Object.assign({}, options, { headers }));
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!res.ok) {
      throw new ApiError(res.status, (body && body.message) || res.statusText || "error");
    }
    return body;
  }

  // Reads: when the operator runs with --api-auth=reads, a 401 asks for a token once.
  async function read(path) {
    try {
      return await api(path);
    } catch (e) {
      if (e.status === 401 && await askToken()) return api(path);
      throw e;
    }
  }

  const recKey = (r) => r.namespace + "/" + r.name;

  async function loadRecs() {
    const list = await read("/recommendations");
    state.recs = new Map(list.items.map((r) => [recKey(r), r]));
  }

  async function loadSummary() {
    state.summary = await read("/summary");
  }

  // ---- Live updates ----

  function setLive(on) {
    const live = $("live");
    live.textContent = on ? "live" : "offline";
    live.className = "live " + (on ? "on" : "off");
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let url = proto + "//" + location.host + API + "/watch";
    if (token()) url += "?access_token=" + encodeURIComponent(token());
    const socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = () => { state.retry = 1000; setLive(true); };
    socket.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      applyChange(msg);
    };
    socket.onclose = () => {
      setLive(false);
      state.socket = null;
      // Back off, then catch up on what was missed while disconnected.
      setTimeout(async () => {
        try { await loadRecs(); render(); } catch (e) { /* retried on the next reconnect */ }
        connect();
      }, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    };
  }

  function applyChange(msg) {
    const key = msg.namespace + "/" + msg.name;
    if (msg.type === "deleted") state.recs.delete(key);
    else state.recs.set(key, Object.assign(state.recs.get(key) || {}, msg));
    if (state.view === "recommendations") renderTable(key);
    if (state.view === "workload" && state.workload && state.workload.rec === key) renderWorkloadHead();
    clearTimeout(state.summaryTimer);
    state.summaryTimer = setTimeout(async () => {
      try { await loadSummary(); if (state.view !== "workload") render(); } catch (e) { /* next */ }
    }, 800);
  }

  // ---- Overview ----

  function barRow(label, count, savings, max, href) {
    const bar = el("div", { class: "bar" + (savings < 0 ? " negative" : "") });
    bar.style.width = (max > 0 ? Math.max(2, (Math.abs(savings) / max) * 100) : 0) + "%";
    return el("tr", {},
      el("td", {}, href ? el("a", { href, text: label }) : label),
      el("td", { class: "num", text: count }),
      el("td", { class: "bar-cell" }, el("div", { class: "bar-line" },
        el("div", { class: "bar-track" }, bar),
        el("span", { class: "bar-value", text: money(savings) }))));
  }

  function renderOverview() {
    const s = state.summary;
    if (!s) return;
    $("total-savings").textContent = money(s.monthlySavingsUSD);
    $("total-recs").textContent = s.recommendations;
    const phases = $("phase-counts");
    phases.replaceChildren();
    const names = PHASES.filter((p) => s.byPhase[p]).concat(
      Object.keys(s.byPhase).filter((p) => !PHASES.includes(p)));
    for (const p of names) {
      phases.append(el("a", { class: "phase-count", href: "#/recommendations?phase=" + p },
        phaseBadge(p), el("strong", { text: s.byPhase[p] })));
    }
    const fill = (id, rows, labelKey, link) => {
      const body = $(id).querySelector("tbody");
      const max = Math.max(0, ...rows.map((r) => Math.abs(r.monthlySavingsUSD)));
      body.replaceChildren(...rows.map((r) => barRow(r[labelKey], r.recommendations,
        r.monthlySavingsUSD, max, link(r[labelKey]))));
    };
    fill("by-namespace", s.byNamespace, "namespace",
      (v) => "#/recommendations?namespace=" + encodeURIComponent(v));
    fill("by-policy", s.byPolicy, "policy",
      (v) => "#/recommendations?policy=" + encodeURIComponent(v));
    const top = [...state.recs.values()].sort((a, b) => b.savings - a.savings).slice(0, 8);
    $("top-recs").querySelector("tbody").replaceChildren(...top.map((r) => el("tr", {},
      el("td", { text: r.namespace }),
      el("td", {}, el("a", { href: workloadHref(r), text: r.name })),
      el("td", { text: (r.display && r.display.cpu) || "–" }),
      el("td", { text: (r.display && r.display.memory) || "–" }),
      el("td", { class: "num", text: money(r.savings) }),
      el("td", {}, phaseBadge(r.phase)))));
    $("nav-nodepools").hidden = !(s.nodePools && s.nodePools.length);
  }

  // ---- The recommendations table ----

  function workloadHref(r) {
    const t = r.target || {};
    if (!t.kind || t.kind === "NodePool") return "#/nodepools";
    return "#/workload/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(t.kind) +
      "/" + encodeURIComponent(t.name);
  }

  function fillSelect(id, values) {
    const select = $(id);
    const current = select.value;
    select.replaceChildren(el("option", { value: "", text: "all" }),
      ...values.map((v) => el("option", { value: v, text: v })));
    if (values.includes(current)) select.value = current;
  }

  function sortValue(r, key) {
    switch (key) {
      case "cpu": return (r.display && r.display.cpu) || "";
      case "memory": return (r.display && r.display.memory) || "";
      case "confidence": return ({ High: 3, Medium: 2, Low: 1 })[r.confidence] || 0;
      default: return r[key] == null ? "" : r[key];
    }
  }

  function filtered() {
    const ns = $("f-namespace").value;
    const phase = $("f-phase").value;
    const policy = $("f-policy").value;
    const min = $("f-min").value === "" ? null : Number($("f-min").value);
    const text = $("f-text").value.trim().toLowerCase();
    const { key, dir } = state.sort;
    return [...state.recs.values()].filter((r) =>
      (!ns || r.namespace === ns) && (!phase || r.phase === phase) &&
      (!policy || r.policy === policy) && (min == null || r.savings >= min) &&
      (!text || (r.name + " " + ((r.display && r.display.target) || "")).toLowerCase()
        .includes(text)))
      .sort((a, b) => {
        const x = sortValue(a, key);
        const y = sortValue(b, key);
        if (x < y) return -dir;
        if (x > y) return dir;
        return recKey(a) < recKey(b) ? -1 : 1;
      });
  }

  function canApprove(r) {
    return r.revision > 0 && r.approvedRevision !== r.revision;
  }

  function recRow(r) {
    const approve = canApprove(r)
      ? el("button", { class: "small", type: "button", onclick: (e) => { e.stopPropagation(); approveFlow(r); },
        text: "Approve" })
      : null;
    return el("tr", { "data-key": recKey(r), class: "clickable", onclick: () => { location.hash = workloadHref(r); } },
      el("td", { text: r.namespace }),
      el("td", {}, el("a", { href: workloadHref(r), text: r.name,
        title: (r.display && r.display.target) || "" })),
      el("td", { class: "mono", text: (r.display && r.display.cpu) || "–" }),
      el("td", { class: "mono", text: (r.display && r.display.memory) || "–" }),
      el("td", { class: "num" + (r.savings < 0 ? " negative" : ""), text: money(r.savings) }),
      el("td", { text: r.confidence || "–" }),
      el("td", { class: "phase" }, phaseBadge(r.phase)),
      el("td", { class: "num", text: r.revision || "–" }),
      el("td", { class: "num approved", text: r.approvedRevision || "–" }),
      el("td", {}, approve));
  }

  function renderTable(changedKey) {
    const recs = [...state.recs.values()];
    fillSelect("f-namespace", [...new Set(recs.map((r) => r.namespace))].sort());
    fillSelect("f-phase", [...new Set(recs.map((r) => r.phase).filter(Boolean))].sort());
    fillSelect("f-policy", [...new Set(recs.map((r) => r.policy).filter(Boolean))].sort());
    const rows = filtered();
    const body = $("recs-table").querySelector("tbody");
    body.replaceChildren(...rows.map(recRow));
    for (const th of $("recs-table").querySelectorAll("th[data-key]")) {
      th.classList.toggle("sorted-asc", th.dataset.key === state.sort.key && state.sort.dir > 0);
      th.classList.toggle("sorted-desc", th.dataset.key === state.sort.key && state.sort.dir < 0);
    }
    $("recs-count").textContent = rows.length + " of " + recs.length + " recommendations";
    if (changedKey) {
      const row = body.querySelector('tr[data-key="' + CSS.escape(changedKey) + '"]');
      if (row) row.classList.add("flash");
    }
  }

  // ---- The workload page ----

  function destroyCharts() {
    for (const c of state.charts) c.destroy();
    state.charts = [];
  }

  function renderWorkloadHead() {
    const w = state.workload;
    const r = state.recs.get(w.rec);
    $("wl-title").textContent = w.kind + " " + w.name;
    $("wl-sub").textContent = "namespace " + w.ns + (r && r.policy ? " · policy " + r.policy : "");
    const facts = $("wl-facts");
    facts.replaceChildren();
    const add = (label, value) => facts.append(el("dt", { text: label }), el("dd", {}, value));
    if (r) {
      add("Phase", phaseBadge(r.phase));
      add("CPU", (r.display && r.display.cpu) || "–");
      add("Memory", (r.display && r.display.memory) || "–");
      add("Savings / month", money(r.savings));
      add("Confidence", r.confidence || "–");
      add("Revision", String(r.revision || "–"));
      add("Approved", String(r.approvedRevision || "–"));
    }
    else {
      add("Recommendation", "none yet");
    }
    $("wl-explanation").textContent = (r && r.explanation) || "";
    const button = $("wl-approve");
    button.hidden = !(r && canApprove(r));
    button.onclick = () => approveFlow(r);
  }

  function lineSeries(label, stroke, dash) {
    return { label, stroke, width: 1.5, dash, points: { show: false }, spanGaps: true };
  }

  // One chart: usage (pod peak and mean) against the current and recommended request.
  function chart(container, times, usage, current, recommended, limit, isCpu, width) {
    const constant = (v) => times.map(() => (v == null ? null : v));
    const fmt = isCpu ? cores : bytes;
    const data = [times, usage.max, usage.avg, constant(current), constant(recommended)];
    const series = [{},
      Object.assign(lineSeries("peak of pods", "#d9822b"), { fill: "rgba(217,130,43,0.12)" }),
      lineSeries("mean of pods", "#8a6d3b"),
      lineSeries("current request", "#c23030", [6, 4]),
      lineSeries("recommended request", "#0f9960", [2, 0])];
    if (limit != null) {
      data.push(constant(limit));
      series.push(lineSeries("current limit", "#7a7a7a", [2, 4]));
    }
    for (const s of series.slice(1)) s.value = (u, v) => fmt(v);
    const wrap = el("div", { class: "chart" });
    const samples = usage.max.filter((v) => v != null).length;
    wrap.dataset.samples = String(samples);
    wrap.dataset.resource = isCpu ? "cpu" : "memory";
    container.append(wrap);
    const plot = new uPlot({
      width, height: 240,
      series,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1e-9)] } },
      // Memory ticks on powers of two (64Mi, 128Mi, 1Gi), CPU on uPlot's decimal steps.
      axes: [{}, Object.assign({ values: (u, ticks) => ticks.map(fmt), size: 70 },
        isCpu ? {} : { incrs: BYTE_STEPS })],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    }, data, wrap);
    state.charts.push(plot);
  }

  async function renderWorkload() {
    const w = state.workload;
    renderWorkloadHead();
    destroyCharts();
    const charts = $("wl-charts");
    charts.replaceChildren(el("p", { class: "muted", text: "Loading usage history…" }));
    const range = $("wl-range").value;
    let usage;
    try {
      usage = await read("/workloads/" + encodeURIComponent(w.ns) + "/" + encodeURIComponent(w.kind) +
        "/" + encodeURIComponent(w.name) + "/usage" + (range ? "?range=" + range : ""));
    } catch (e) {
      charts.replaceChildren(el("p", { class: "error", text: "Usage history: " + e.message }));
      return;
    }
    if (state.workload !== w) return;
    charts.replaceChildren();
    const width = Math.max(320, charts.clientWidth || 900);
    for (const c of usage.containers) {
      const section = el("div", { class: "panel container-usage" });
      section.append(el("h2", {}, "Container ", el("code", { text: c.name }),
        el("span", { class: "muted", text: " · " + usage.pods + " pods · " + usage.range +
          " at " + Math.round(usage.step / 60) + "m steps" })));
      charts.append(section);
      const cur = c.current || {};
      const rec = c.recommended || {};
      const req = (o) => (o && o.requests) || {};
      const lim = (o) => (o && o.limits) || {};
      const empty = { max: usage.timestamps.map(() => null), avg: usage.timestamps.map(() => null) };
      section.append(el("h3", { text: "CPU (cores)" }));
      chart(section, usage.timestamps, c.cpu || empty, req(cur).cpu, req(rec).cpu, lim(cur).cpu,
        true, width - 34);
      section.append(el("h3", { text: "Memory (bytes)" }));
      chart(section, usage.timestamps, c.memory || empty, req(cur).memory, req(rec).memory,
        lim(cur).memory, false, width - 34);
    }
    if (!usage.containers.length) charts.append(el("p", { class: "muted", text: "No containers." }));
  }

  // ---- NodePools ----

  function renderPools() {
    const pools = (state.summary && state.summary.nodePools) || [];
    const body = $("pools-table").querySelector("tbody");
    body.replaceChildren(...pools.map((p) => {
      const plan = p.plan || {};
      const pair = (o) => (o ? (o.current ?? "–") + " → " + (o.proposed ?? "–") : "–");
      const list = (k) => ((plan.current && plan.current[k]) || []).join(", ") + " → " +
        ((plan.proposed && plan.proposed[k]) || []).join(", ");
      const approve = canApprove(p)
        ? el("button", { class: "small", type: "button", onclick: () => approveFlow(p), text: "Approve" })
        : null;
      return el("tr", { "data-key": recKey(p) },
        el("td", { text: (p.target && p.target.name) || p.name }),
        el("td", {}, phaseBadge(p.phase)),
        el("td", { class: "num", text: pair(plan.nodes) }),
        el("td", { class: "num", text: pair(plan.monthlyCost) }),
        el("td", { class: "wrap", text: list("instanceTypes") }),
        el("td", { text: list("capacityTypes") }),
        el("td", { class: "num", text: money(p.savings) }),
        el("td", {}, approve));
    }));
    if (!pools.length) {
      body.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No NodePool plans." })));
    }
  }

  // ---- Token and approval ----

  function askToken() {
    return new Promise((resolve) => {
      const dialog = $("token-dialog");
      $("token-input").value = token();
      const done = (ok) => {
        dialog.close();
        $("token-form").onsubmit = null;
        resolve(ok);
      };
      $("token-form").onsubmit = (e) => {
        e.preventDefault();
        const value = $("token-input").value.trim();
        if (value) sessionStorage.setItem(TOKEN_KEY, value);
        updateTokenButton();
        done(Boolean(value));
      };
      $("token-cancel").onclick = () => done(false);
      $("token-clear").onclick = () => {
        sessionStorage.removeItem(TOKEN_KEY);
        updateTokenButton();
        done(false);
      };
      dialog.showModal();
      $("token-input").focus();
    });
  }

  function updateTokenButton() {
    $("token-button").textContent = token() ? "Token set" : "Set token";
  }

  async function approveFlow(r) {
    if (!token() && !(await askToken())) return;
    const dialog = $("approve-dialog");
    $("approve-name").textContent = r.namespace + "/" + r.name;
    $("approve-revision").textContent = r.revision;
    $("approve-cpu").textContent = (r.display && r.display.cpu) || "–";
    $("approve-memory").textContent = (r.display && r.display.memory) || "–";
    $("approve-savings").textContent = money(r.savings);
    $("approve-explanation").textContent = r.explanation || "";
    $("approve-error").hidden = true;
    $("approve-cancel").onclick = () => dialog.close();
    $("approve-form").onsubmit = async (e) => {
      e.preventDefault();
      try {
        const result = await api("/recommendations/" + encodeURIComponent(r.namespace) + "/" +
          encodeURIComponent(r.name) + "/approve", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ revision: r.revision }),
        });
        dialog.close();
        applyChange(Object.assign({ type: "changed" }, result));
        toast("Approved revision " + r.revision + " of " + r.namespace + "/" + r.name + " as " +
          result.approvedBy, "ok");
      } catch (err) {
        const box = $("approve-error");
        box.textContent = err.message;
        box.hidden = false;
        if (err.status === 401) {
          sessionStorage.removeItem(TOKEN_KEY);
          updateTokenButton();
          box.textContent += " — set a valid token and try again.";
        }
      }
    };
    dialog.showModal();
  }

  // ---- Routing ----

  function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query] = hash.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(query || "");
    let view = "overview";
    if (parts[0] === "recommendations") {
      view = "recommendations";
      for (const [k, id] of [["namespace", "f-namespace"], ["phase", "f-phase"], ["policy", "f-policy"]]) {
        if (params.has(k)) {
          renderTable();
          $(id).value = params.get(k);
        }
      }
    }
    else if (parts[0] === "workload" && parts.length === 4) {
      view = "workload";
      const [, ns, kind, name] = parts;
      state.workload = { ns, kind, name,
        rec: ns + "/" + kind.toLowerCase() + "-" + name };
    }
    else if (parts[0] === "nodepools") {
      view = "nodepools";
    }
    state.view = view;
    for (const section of document.querySelectorAll(".view")) {
      section.hidden = section.id !== "view-" + view;
    }
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.dataset.view === view);
    }
    if (view !== "workload") destroyCharts();
    render();
  }

  function render() {
    if (state.view === "overview") renderOverview();
    else if (state.view === "recommendations") renderTable();
    else if (state.view === "workload") renderWorkload();
    else if (state.view === "nodepools") renderPools();
  }

  function wire() {
    $("filters").addEventListener("input", () => renderTable());
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    for (const th of $("recs-table").querySelectorAll("th[data-key]")) {
      th.addEventListener("click", () => {
        const key = th.dataset.key;
        state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : (key === "savings" ? -1 : 1) };
        renderTable();
      });
    }
    $("wl-range").addEventListener("change", () => renderWorkload());
    $("token-button").addEventListener("click", () => askToken());
    window.addEventListener("hashchange", route);
  }

  async function start() {
    wire();
    updateTokenButton();
    try {
      await Promise.all([loadRecs(), loadSummary()]);
      showNotice(state.summary.synced ? "" : "The operator is still reading the cluster…");
    } catch (e) {
      showNotice("Cannot reach the operator's API: " + e.message);
    }
    route();
    connect();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
