// tide's web interface: plain JavaScript, no build step, no external
// resources. Everything shown comes from the JSON API with the bearer token
// kept in sessionStorage. Server data is only ever put into the page as
// text (textContent), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "tide.token";
  const FAST = 5000;   // status, roles, fleet, overrides, decisions
  const SLOW = 30000;  // charts and the week
  const SVG = "http://www.w3.org/2000/svg";
  // SVG presentation attributes do not take CSS variables: the series
  // colours are repeated here (they match style.css).
  const COLOR = { load: "#1f6feb", forecast: "#8250df", desired: "#d1570b", ready: "#1a7f37" };

  const state = { roles: [], features: [], lastSlow: 0, timer: null, busy: false, again: false, formsFilled: false,
    action: null, releases: null };

  // ---- tiny DOM helpers ----
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "style") Object.assign(el.style, v); // CSSOM: allowed by the CSP, unlike style attributes
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const $ = (sel) => document.querySelector(sel);
  function replace(el, ...kids) { el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined)); }

  // ---- time formatting ----
  const pad = (n) => String(n).padStart(2, "0");
  function hhmm(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function when(iso) {
    const d = new Date(iso);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const day = sameDay ? "" : d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" }) + " ";
    return day + hhmm(d) + ":" + pad(d.getSeconds());
  }
  // The service's clock may differ from this browser's (a clock running
  // faster for a demonstration, or plain skew): decision times are judged
  // against the service's own "now", host launch times against the wall.
  let serviceSkew = 0;
  function serviceNow() { return Date.now() + serviceSkew; }
  function ago(iso, now) {
    const sec = Math.round(((now || Date.now()) - new Date(iso).getTime()) / 1000);
    if (sec < 5) return "just now";
    if (sec < 90) return sec + " s ago";
    if (sec < 5400) return Math.round(sec / 60) + " min ago";
    return Math.round(sec / 3600) + " h ago";
  }
  function until(iso) {
    const min = Math.round((new Date(iso).getTime() - serviceNow()) / 60000);
    if (min < 1) return "less than a minute";
    if (min < 120) return min + " min";
    return (min / 60).toFixed(1).replace(/\.0$/, "") + " h";
  }
  function fmtNum(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1).replace(/\.0$/, "") + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 1e3) return (v / 1e3).toFixed(1).replace(/\.0$/, "") + "k";
    if (a >= 10 || v === Math.round(v)) return String(Math.round(v));
    return v.toFixed(1);
  }
  function kindOf(winner) { return (winner || "").split(":")[0]; }

  // ---- token and API ----
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function takeTokenFromFragment() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  }
  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + token() } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new APIError(0, "tide is not reachable: " + e.message);
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (resp.status === 401) {
      signOut(data && data.error ? data.error : "the token was refused");
      throw new APIError(401, "unauthorized");
    }
    if (!resp.ok) throw new APIError(resp.status, (data && data.error) || resp.status + " " + resp.statusText);
    return data;
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.timer);
    $("#app").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    replace($("#banners"));
    $("#status").textContent = "signed out";
    $("#login-msg").textContent = msg || "";
    $("#login-msg").className = "form-msg" + (msg ? " err" : "");
  }
  function signIn() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = false;
    state.lastSlow = 0;
    refresh();
  }

  // ---- refresh loop ----
  async function refresh() {
    clearTimeout(state.timer);
    if (!token()) return;
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    const slow = Date.now() - state.lastSlow >= SLOW;
    try {
      const status = await api("GET", "/api/status");
      state.features = status.features || [];
      renderStatus(status, null);
      const has = (f) => state.features.includes(f);
      const jobs = [
        // The releases are those of the app the deploy form selects,
        // known once the roles filled it.
        api("GET", "/api/roles").then(renderRoles).then(() => has("releases") && has("actions") ? loadReleases() : null),
        has("fleet") ? api("GET", "/api/fleet").then(renderFleet).catch(showFleetError) : null,
        has("overrides") ? api("GET", "/api/overrides").then(renderOverrides) : null,
        has("history") ? api("GET", "/api/decisions?changes=true&limit=60").then(renderDecisions) : null,
      ];
      if (slow) {
        state.lastSlow = Date.now();
        jobs.push(api("GET", "/api/schedule").then(renderWeek));
      }
      await Promise.all(jobs);
      if (slow) await refreshCharts();
      setPanels();
    } catch (e) {
      if (e.status !== 401) renderStatus(null, e);
    } finally {
      state.busy = false;
      const soon = state.again;
      state.again = false;
      if (token()) state.timer = setTimeout(refresh, soon ? 0 : FAST);
    }
  }
  function setPanels() {
    const has = (f) => state.features.includes(f);
    $("#override-panel").hidden = !has("overrides");
    $("#deploy-panel").hidden = !has("actions");
    $("#releases").hidden = !has("releases") || !$("#deploy-form [name=app]").options.length;
  }

  function renderStatus(st, err) {
    const el = $("#status");
    if (err) {
      replace(el, h("span", { class: "dot down" }), "API error: " + err.message);
      return;
    }
    const parts = [];
    if (st.now) serviceSkew = new Date(st.now).getTime() - Date.now();
    if (st.last_step) {
      const age = (serviceNow() - new Date(st.last_step).getTime()) / 1000;
      parts.push(h("span", { class: "dot" + (age > 600 ? " stale" : "") }), "last decision " + ago(st.last_step, serviceNow()));
    } else {
      parts.push(h("span", { class: "dot stale" }), "no decision yet");
    }
    replace(el, parts);
    const banners = [];
    if (st.config_error) {
      banners.push(h("div", { class: "banner error", id: "config-error" },
        h("strong", {}, "The schedule file was not reloaded: the previous one stays in force."), st.config_error));
    }
    if (st.apply_error) {
      banners.push(h("div", { class: "banner warn", id: "apply-error" },
        h("strong", {}, "The last apply failed."), st.apply_error));
    }
    replace($("#banners"), banners);
    renderAction(st.action);
  }

  function renderAction(a) {
    const was = state.action;
    state.action = a || null;
    if (!!(was && was.running) !== !!(a && a.running) && state.releases) renderReleases(state.releases);
    const el = $("#action");
    if (!a) { replace(el); return; }
    let what = "apply";
    if (a.kind === "deploy") what = `deploy ${a.app} ${a.revision}`;
    else if (a.kind === "rollback") what = `rollback ${a.app} to ${a.revision || "the previous release"}`;
    else if (a.kind === "replace") what = `replace ${(a.labels || []).join(", ")}` + (a.discard_data ? ` (discarding data: ${a.reason})` : "");
    let text;
    if (a.running) text = `${what}: running since ${when(a.started)}`;
    else if (a.error) text = `${what} failed at ${when(a.finished)}: ${a.error}`;
    else text = `${what}: done at ${when(a.finished)}`;
    replace(el, text);
    el.className = "small " + (a.error ? "form-msg err" : "muted");
    renderResult(a.running ? null : a.result);
  }

  // renderResult lists what the last action did: first the hosts whose
  // data a replace discarded (the backup error, and the backup the new
  // host restored or that it started empty), then each host's outcome
  // with the deployer's reason (replaced, replaced-data-discarded, ...).
  function renderResult(res) {
    const el = $("#action-result");
    const discarded = (res && res.discarded) || [];
    const hosts = (res && res.hosts) || [];
    el.hidden = !discarded.length && !hosts.length;
    if (el.hidden) { replace(el); return; }
    const restored = (d, p) => {
      if (!p.app) return `role ${p.role} is not stateful: it keeps no backup`;
      if (!p.key) return `${p.app}: no verified backup: the new ${d.label} started empty`;
      return h("span", {}, `${p.app}: the new ${d.label} restored `, h("code", { class: "restored-key" }, p.key),
        `, taken ${p.created_at ? when(p.created_at) : "at an unknown time"}: what the old host wrote after it is lost`);
    };
    const items = discarded.map((d) => h("li", { class: "discarded", "data-discarded": d.label },
      h("strong", {}, `${d.label} (${d.instance_id || "no instance"}): data discarded.`),
      ` Terminated without a verified backup: ${d.backup_error}`,
      h("ul", {}, (d.restored || []).map((p) => h("li", {}, restored(d, p))))));
    for (const x of hosts) {
      items.push(h("li", { "data-host": x.label, class: x.action === "failed" ? "err" : null },
        h("span", { class: "mono" }, x.label), ` ${x.instance_id ? "(" + x.instance_id + ") " : ""}${x.action}`,
        x.reason ? h("span", { class: "chip reason" }, x.reason) : null,
        x.error ? `: ${x.error}` : null));
    }
    replace(el, h("ul", {}, items));
  }

  // ---- roles ----
  function renderRoles(data) {
    state.roles = data.roles || [];
    const box = $("#roles");
    const seen = new Set();
    for (const r of state.roles) {
      seen.add(r.name);
      let card = box.querySelector(`[data-role="${CSS.escape(r.name)}"]`);
      if (!card) {
        card = h("article", { class: "role", "data-role": r.name },
          h("div", { class: "role-info" }),
          h("div", { class: "chart" }, h("div", { class: "legend" }), h("div", { class: "plot" })));
        box.append(card);
        state.lastSlow = 0; // a new role needs its chart
      }
      fillRole(card.querySelector(".role-info"), r);
    }
    for (const card of [...box.children]) if (!seen.has(card.dataset.role)) card.remove();
    fillForms();
  }

  function fillRole(el, r) {
    const d = r.decision;
    const hosts = state.hostsByRole ? state.hostsByRole[r.name] || [] : [];
    const ready = hosts.filter((x) => x.ready).length;
    const pending = hosts.filter((x) => !x.ready && (x.state === "pending" || x.state === "running")).length;
    const meta = [`${r.min}–${r.max} hosts`];
    if (r.instance_type) meta.push(r.instance_type);
    if (r.load_driven) meta.push(`${fmtNum(r.capacity)} load/host`);
    const chips = [];
    if (d) {
      chips.push(h("span", { class: "chip winner", title: "the input that set the count" }, "by " + d.winner));
      for (const st of d.steps || []) chips.push(h("span", { class: "chip step", title: st.detail }, st.kind));
      if (d.frozen) chips.push(h("span", { class: "chip frozen" }, "load missing: frozen"));
    }
    if (r.override) {
      chips.push(h("span", { class: "chip override", title: r.override.reason },
        `${r.override.kind} ${r.override.count} for ${until(r.override.until)}`));
    }
    const won = d ? (d.inputs || []).find((i) => i.won) : null;
    replace(el,
      h("div", { class: "role-name" }, r.name),
      h("div", { class: "role-meta" }, meta.join(" · ")),
      h("div", { class: "counts" },
        h("div", { class: "count desired" }, h("span", { class: "n desired-count" }, d ? d.desired : "–"), h("span", { class: "l" }, "desired")),
        h("div", { class: "count ready" }, h("span", { class: "n" }, state.hostsByRole ? ready : "–"), h("span", { class: "l" }, "ready")),
        h("div", { class: "count" }, h("span", { class: "n" }, state.hostsByRole ? pending : "–"), h("span", { class: "l" }, "pending")),
        d && d.load !== undefined ? h("div", { class: "count" }, h("span", { class: "n" }, fmtNum(d.load)), h("span", { class: "l" }, "load")) : null),
      h("div", { class: "why", title: d ? d.inputs.map((i) => `${i.won ? "* " : "  "}${i.source}: ${i.count} ${i.detail}`).join("\n") : "" },
        d ? (won ? won.detail : d.winner) : "no decision yet"),
      h("div", { class: "chips" }, chips));
  }

  // ---- charts ----
  async function refreshCharts() {
    await Promise.all(state.roles.map(async (r) => {
      const card = $(`[data-role="${CSS.escape(r.name)}"]`);
      if (!card) return;
      try {
        const c = await api("GET", `/api/roles/${encodeURIComponent(r.name)}/chart?hours=24`);
        drawChart(card.querySelector(".chart"), c);
      } catch (e) {
        if (e.status !== 401) replace(card.querySelector(".plot"), h("div", { class: "empty" }, "chart unavailable: " + e.message));
      }
    }));
  }

  function drawChart(box, c) {
    const plot = box.querySelector(".plot");
    const W = Math.max(320, plot.clientWidth || box.clientWidth || 800), H = 220;
    const m = { l: 46, r: 34, t: 10, b: 24 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    // The window starts at the oldest point shown (a young service has
    // only minutes of history), at least an hour before now.
    const now = new Date(c.now).getTime();
    const series = [c.load, c.desired, c.ready, c.forecast_used].filter(Boolean).flat();
    const oldest = series.length ? Math.min(...series.map((p) => new Date(p.at).getTime())) : now;
    const t0 = Math.max(new Date(c.from).getTime(), Math.min(oldest, now - 3600e3));
    const fpts = (c.forecast && c.forecast.points) || [];
    const ahead = fpts.length ? new Date(fpts[fpts.length - 1].at).getTime() : now;
    const t1 = Math.max(ahead, now + (now - t0) / 12);
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
    const cap = c.capacity > 0 ? c.capacity : 0;
    const hostSeries = [...c.desired, ...c.ready].map((p) => p.value);
    const loadVals = [...c.load.map((p) => p.value), ...c.forecast_used.map((p) => p.value), ...fpts.map((p) => p.upper)];
    let yMaxLoad, yMaxHosts;
    if (cap) {
      yMaxLoad = niceMax(Math.max(1, ...loadVals, ...hostSeries.map((v) => v * cap)) * 1.08);
      yMaxHosts = yMaxLoad / cap;
    } else {
      yMaxHosts = Math.max(4, Math.ceil((Math.max(1, ...hostSeries) * 1.2) / 4) * 4); // whole hosts on every tick
      yMaxLoad = loadVals.length ? niceMax(Math.max(1, ...loadVals) * 1.08) : yMaxHosts;
    }
    const yl = (v) => m.t + ih - (v / yMaxLoad) * ih;
    const yh = (v) => m.t + ih - (v / yMaxHosts) * ih;

    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${c.role}: load, forecast, desired and ready hosts` });
    svg.append(s("rect", { class: "future", x: x(now), y: m.t, width: Math.max(0, x(t1) - x(now)), height: ih }));
    // grid and axes
    for (let i = 0; i <= 4; i++) {
      const y = m.t + (ih * i) / 4;
      svg.append(s("line", { class: "grid", x1: m.l, x2: m.l + iw, y1: y, y2: y }));
      const lv = yMaxLoad * (1 - i / 4), hv = yMaxHosts * (1 - i / 4);
      if (cap || loadVals.length) svg.append(s("text", { x: m.l - 6, y: y + 3.5, "text-anchor": "end" }, fmtNum(lv)));
      svg.append(s("text", { x: m.l + iw + 6, y: y + 3.5 }, fmtNum(hv)));
    }
    svg.append(s("text", { x: m.l + iw + 6, y: m.t + ih + 16 }, "hosts"));
    if (cap || loadVals.length) svg.append(s("text", { x: m.l - 6, y: m.t + ih + 16, "text-anchor": "end" }, "load"));
    const span = t1 - t0;
    const stepH = span > 30 * 3600e3 ? 6 * 3600e3 : span > 8 * 3600e3 ? 3 * 3600e3 : span > 3 * 3600e3 ? 3600e3 : 15 * 60e3;
    for (let t = Math.ceil(t0 / stepH) * stepH; t <= t1; t += stepH) {
      const d = new Date(t);
      svg.append(s("line", { class: "grid", x1: x(t), x2: x(t), y1: m.t, y2: m.t + ih }));
      svg.append(s("text", { x: x(t), y: m.t + ih + 15, "text-anchor": "middle" }, hhmm(d)));
    }
    svg.append(s("line", { class: "axis", x1: m.l, x2: m.l + iw, y1: m.t + ih, y2: m.t + ih }));

    // forecast band and line ahead
    if (fpts.length) {
      const top = fpts.map((p) => `${x(Date.parse(p.at))},${yl(p.upper)}`);
      const bottom = fpts.slice().reverse().map((p) => `${x(Date.parse(p.at))},${yl(p.lower > 0 ? p.lower : p.point)}`);
      svg.append(s("polygon", { points: [...top, ...bottom].join(" "), fill: COLOR.forecast, "fill-opacity": 0.16, stroke: "none" }));
      svg.append(s("polyline", { points: fpts.map((p) => `${x(Date.parse(p.at))},${yl(p.point)}`).join(" "), fill: "none", stroke: COLOR.forecast, "stroke-width": 1.8 }));
    }
    // forecast the decisions used (upper quantile), dotted
    if (c.forecast_used.length) svg.append(line(c.forecast_used, x, yl, { stroke: COLOR.forecast, "stroke-width": 1.2, "stroke-dasharray": "2 3" }));
    if (c.load.length) svg.append(line(c.load, x, yl, { stroke: COLOR.load, "stroke-width": 1.6 }));
    if (c.ready.length) svg.append(step(c.ready, x, yh, now, { stroke: COLOR.ready, "stroke-width": 2 }));
    if (c.desired.length) svg.append(step(c.desired, x, yh, now, { stroke: COLOR.desired, "stroke-width": 2.2, "stroke-dasharray": "6 3" }));
    svg.append(s("line", { class: "now", x1: x(now), x2: x(now), y1: m.t, y2: m.t + ih }));
    // The current desired and ready counts as dots at now.
    if (c.ready.length) svg.append(s("circle", { cx: x(now), cy: yh(c.ready[c.ready.length - 1].value), r: 3.5, fill: COLOR.ready }));
    if (c.desired.length) svg.append(s("circle", { cx: x(now), cy: yh(c.desired[c.desired.length - 1].value), r: 3.5, fill: COLOR.desired }));
    svg.append(s("text", { x: x(now) + 4, y: m.t + 10 }, "now"));

    const legend = [h("span", { class: "desired" }, "desired"), h("span", { class: "ready" }, "ready")];
    if (c.load.length || cap) legend.unshift(h("span", { class: "load" }, "load"));
    if (fpts.length || c.forecast_used.length) legend.push(h("span", { class: "fc" }, "forecast" + (c.forecast && c.forecast.model ? ` (${c.forecast.model})` : "")));
    if (fpts.length) legend.push(h("span", { class: "fc band" }, "band" + (c.forecast.quantile ? ` to p${Math.round(c.forecast.quantile * 100)}` : "")));
    if (c.forecast_note) legend.push(h("span", { class: "note-inline", title: c.forecast_note }, "no forecast: " + shorten(c.forecast_note, 60)));
    replace(box.querySelector(".legend"), legend);
    replace(plot, svg);
  }
  function shorten(t, n) { return t.length > n ? t.slice(0, n - 1) + "…" : t; }
  function line(ps, x, y, attrs) {
    return s("polyline", Object.assign({ points: ps.map((p) => `${x(Date.parse(p.at)).toFixed(1)},${y(p.value).toFixed(1)}`).join(" "), fill: "none", "stroke-linejoin": "round" }, attrs));
  }
  function step(ps, x, y, now, attrs) {
    const pts = [];
    ps.forEach((p, i) => {
      const xi = x(Date.parse(p.at));
      if (i > 0) pts.push(`${xi.toFixed(1)},${y(ps[i - 1].value).toFixed(1)}`);
      pts.push(`${xi.toFixed(1)},${y(p.value).toFixed(1)}`);
    });
    pts.push(`${x(now).toFixed(1)},${y(ps[ps.length - 1].value).toFixed(1)}`);
    return s("polyline", Object.assign({ points: pts.join(" "), fill: "none", "stroke-linejoin": "round" }, attrs));
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const f of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (f * p >= v) return f * p;
    return 10 * p;
  }

  // ---- fleet ----
  function renderFleet(data) {
    const hosts = data.hosts || [];
    const byRole = {};
    for (const r of state.roles) byRole[r.name] = [];
    for (const x of hosts) (byRole[x.role] = byRole[x.role] || []).push(x);
    state.hostsByRole = byRole;
    for (const r of state.roles) {
      const card = $(`[data-role="${CSS.escape(r.name)}"] .role-info`);
      if (card) fillRole(card, r);
    }
    const ready = hosts.filter((x) => x.ready).length;
    $("#fleet-summary").textContent = `${hosts.length} hosts, ${ready} ready`;
    if (!hosts.length) { replace($("#fleet"), h("div", { class: "empty" }, "No hosts.")); return; }
    const rows = [];
    const acts = state.features.includes("actions");
    const running = !!(state.action && state.action.running);
    const cols = acts ? 8 : 7;
    for (const [role, list] of Object.entries(byRole)) {
      if (!list.length) continue;
      rows.push(h("tr", { class: "group" }, h("td", { colspan: cols }, `${role} · ${list.length} host${list.length === 1 ? "" : "s"}`)));
      for (const x of list) {
        // A fixed role's hosts (the static cloud's) are never launched
        // nor terminated by tide: they cannot be replaced.
        const fixed = !!(state.roles.find((r) => r.name === x.role) || {}).fixed;
        const act = !acts || !x.label ? null : fixed ? h("td", { class: "act muted small", title: "tide neither launches nor terminates this role's hosts" }, "fixed") : h("td", { class: "act" },
          h("button", { type: "button", class: "small secondary", "data-replace": x.label, disabled: running,
            title: running ? `wait: a ${state.action.kind} is running` : `give ${x.label} a new host`,
            onclick: () => replaceHost(x, false) }, "Replace"),
          h("button", { type: "button", class: "small danger", "data-replace-dead": x.label, disabled: running,
            title: running ? `wait: a ${state.action.kind} is running` : `${x.label} is dead: replace it even if its drain or backup fails, discarding its data since the newest verified backup`,
            onclick: () => replaceHost(x, true) }, "Dead…"));
        rows.push(h("tr", { "data-label": x.label },
          h("td", { class: "mono" }, x.label || "(unlabelled)"),
          h("td", { class: "mono" }, x.address || "–"),
          h("td", {}, x.zone || "–"),
          h("td", {}, h("span", { class: `state ${x.state}${x.ready ? " ready" : ""}`, title: x.instance_id }, x.ready ? "ready" : x.state)),
          h("td", { class: "mono" }, x.revision || "–"),
          h("td", { class: "num" }, x.processes),
          h("td", { class: "muted" }, x.launched_at && !x.launched_at.startsWith("0001") ? ago(x.launched_at) : "–"),
          act));
      }
    }
    const heads = ["Label", "Address", "Zone", "State", "Revision", "Processes", "Launched"].concat(acts ? [""] : []);
    replace($("#fleet"), h("table", { class: "hosts" },
      h("thead", {}, h("tr", {}, heads.map((t, i) => h("th", { class: i === 5 ? "num" : null }, t)))),
      h("tbody", {}, rows)));
  }
  function showFleetError(e) {
    if (e.status === 401) throw e;
    replace($("#fleet"), h("div", { class: "empty" }, "Fleet unavailable: " + e.message));
  }

  // ---- overrides ----
  function renderOverrides(data) {
    const list = data.overrides || [];
    const el = $("#overrides");
    if (!list.length) { replace(el, h("div", { class: "empty small" }, "No override in force: schedules and load decide.")); return; }
    replace(el, h("div", { class: "overrides" }, list.map((o) => h("div", { class: "ov", "data-override": o.role },
      h("div", {},
        h("div", { class: "what" }, `${o.role}: ${o.kind === "pin" ? "exactly" : "at least"} ${o.count}${o.ignore_limits ? " (beyond limits)" : ""}`),
        h("div", { class: "detail" }, `for ${until(o.until)} more · “${o.reason}”`)),
      h("button", { type: "button", class: "small danger", onclick: () => clearOverride(o.role) }, "Clear")))));
  }
  async function clearOverride(role) {
    const msg = $("#override-msg");
    try {
      await api("DELETE", "/api/overrides/" + encodeURIComponent(role));
      setMsg(msg, true, `Override of ${role} cleared.`);
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    }
    chartsSoon();
    refresh();
  }
  function setMsg(el, good, text) { el.className = "form-msg " + (good ? "ok" : "err"); el.textContent = text; }

  function fillForms() {
    const roleSel = $("#override-form [name=role]");
    const names = state.roles.map((r) => r.name);
    const current = [...roleSel.options].map((o) => o.value);
    if (names.join() !== current.join()) {
      const keep = roleSel.value;
      replace(roleSel, names.map((n) => h("option", { value: n }, n)));
      if (names.includes(keep)) roleSel.value = keep;
    }
    const apps = [...new Set(state.roles.flatMap((r) => r.apps || []))];
    const appSel = $("#deploy-form [name=app]");
    if (apps.join() !== [...appSel.options].map((o) => o.value).join()) {
      const keep = appSel.value;
      replace(appSel, apps.map((a) => h("option", { value: a }, a)));
      if (apps.includes(keep)) appSel.value = keep;
    }
    const count = $("#override-form [name=count]");
    if (!state.formsFilled && state.roles.length) {
      const r = state.roles.find((x) => x.name === roleSel.value);
      if (r && r.decision) count.value = r.decision.desired;
      state.formsFilled = true;
    }
  }

  async function submitOverride(ev) {
    ev.preventDefault();
    const f = ev.target, msg = $("#override-msg");
    const body = {
      role: f.role.value,
      count: Number(f.count.value),
      kind: f.kind.value,
      for: f.for.value.trim(),
      reason: f.reason.value.trim(),
      ignore_limits: f.ignore_limits.checked,
    };
    const btn = f.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      const o = await api("POST", "/api/overrides", body);
      setMsg(msg, true, `${o.role} ${o.kind === "pin" ? "pinned at" : "kept at least at"} ${o.count} until ${hhmm(new Date(o.until))}.`);
      f.reason.value = "";
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    } finally {
      btn.disabled = false;
    }
    chartsSoon();
    refresh();
  }

  // chartsSoon makes the next refresh a few seconds from now redraw the
  // charts too, so that they show the decision an action just changed.
  function chartsSoon() { state.lastSlow = Date.now() - SLOW + 3000; }

  async function submitDeploy(ev) {
    ev.preventDefault();
    const f = ev.target, msg = $("#deploy-msg");
    try {
      await api("POST", "/api/deploy", { app: f.app.value, revision: f.revision.value.trim() });
      setMsg(msg, true, `Deploying ${f.app.value} ${f.revision.value.trim()}…`);
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    }
    chartsSoon();
    refresh();
  }
  // ---- releases and rollback ----
  async function loadReleases() {
    const app = $("#deploy-form [name=app]").value;
    if (!app) return;
    try {
      const v = await api("GET", "/api/releases?app=" + encodeURIComponent(app));
      if (v.app === $("#deploy-form [name=app]").value) renderReleases(v);
    } catch (e) {
      if (e.status === 401) throw e;
      state.releases = null;
      replace($("#releases-summary"), h("span", { class: "form-msg err" }, "Release history unavailable: " + e.message));
      replace($("#release-list"));
      const btn = $("#rollback");
      btn.disabled = true;
      btn.title = "the release history could not be read";
    }
  }

  function renderReleases(v) {
    state.releases = v;
    const running = !!(state.action && state.action.running);
    const busy = running ? `wait: a ${state.action.kind} is running` : null;
    replace($("#releases-summary"),
      h("strong", {}, v.app), ": current ", h("span", { class: "mono", id: "release-current" }, v.current || "–"),
      v.rollback ? [" · a rollback goes to ", h("span", { class: "mono" }, v.rollback)] : " · no earlier release recorded");
    const btn = $("#rollback");
    btn.disabled = !v.rollback || running;
    btn.title = !v.rollback ? `no earlier release of ${v.app} recorded: ${v.current || "nothing"} is the oldest of its history`
      : busy || `roll ${v.app} back from ${v.current} to ${v.rollback}`;
    const total = (v.hosts || []).length;
    const rows = (v.history || []).map((r) => {
      const cls = { "current": "current", "rolled back from": "gone", "on hosts only": "hosts-only" }[r.state] || null;
      const hosts = r.hosts || [];
      const where = !hosts.length ? "–" : hosts.length <= 3 ? hosts.join(", ") : `${hosts.length} of ${total} hosts`;
      let act = null;
      if (r.state !== "current") {
        const forward = r.state === "rolled back from";
        act = h("button", { type: "button", class: "small secondary", "data-to": r.revision, disabled: running,
          title: busy || `roll ${v.app} ${forward ? "forward" : "back"} from ${v.current} to ${r.revision}`,
          onclick: () => rollback(v.app, v.current, r.revision, forward) }, forward ? "Roll forward" : "Roll back");
      }
      return h("tr", { class: cls, "data-revision": r.revision },
        h("td", { class: "mono", title: r.state === "current" ? "the revision the hosts run now" : null }, r.revision),
        h("td", {}, r.state),
        h("td", { title: hosts.join(" ") || "on no host" }, where),
        h("td", { class: "act" }, act));
    });
    const box = $("#release-list");
    const open = !!box.querySelector("details[open]");
    replace(box,
      rows.length ? h("table", { class: "rel" },
        h("thead", {}, h("tr", {}, h("th", {}, "Revision"), h("th", {}, "History"), h("th", {}, "On hosts"), h("th", {}))),
        h("tbody", {}, rows)) : h("div", { class: "empty small" }, `No release of ${v.app} recorded yet.`),
      total ? h("details", { class: "host-rel", open },
        h("summary", {}, `Releases on the ${total} host${total === 1 ? "" : "s"} (oldest first)`),
        h("ul", {}, v.hosts.map((x) => h("li", { "data-host": x.label, class: x.answered && x.current !== v.current ? "differs" : null },
          h("span", { class: "mono" }, x.label), " · ",
          x.answered ? [`current ${x.current || "–"}`, " · on disk ", h("span", { class: "mono" }, (x.releases || []).join(" ") || "–")]
            : "not answering")))) : null);
  }

  // rollback asks, naming from and to, and sends the revision the
  // operator agreed to (not "one step back", which the history could
  // change meanwhile).
  async function rollback(app, from, to, forward) {
    const msg = $("#deploy-msg");
    if (!window.confirm(`Roll ${app} ${forward ? "forward" : "back"} from ${from} to ${to}?\n\nEvery host of ${app} switches to ${to} and restarts its processes.`)) return;
    try {
      const st = await api("POST", "/api/rollback", { app, to });
      setMsg(msg, true, `Rolling ${app} ${forward ? "forward" : "back"} to ${st.revision || to}…`);
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    }
    refresh();
  }
  function rollbackOneStep() {
    const v = state.releases;
    if (v && v.rollback) rollback(v.app, v.current, v.rollback, false);
  }

  // replaceHost asks, naming the host and what happens to its data, and
  // sends the replace. A dead host's replace (discard) asks a second time,
  // saying what is lost, and for the reason the log keeps.
  async function replaceHost(x, dead) {
    const msg = $("#fleet-msg");
    const role = state.roles.find((r) => r.name === x.role);
    const stateful = !!(role && role.stateful);
    const what = `Replace ${x.label} (${x.instance_id || "no instance"}, ${x.address || "no address"})?\n\n`;
    let body = { labels: [x.label] };
    if (!dead) {
      const data = stateful ? `Its data is backed up first and the backup verified; the new host restores it. If the backup fails, ${x.label} is kept.\n\n`
        : "";
      if (!window.confirm(what + data + `${x.label} is drained and terminated, and ${x.label} is launched again on a new host.`)) return;
    } else {
      const loss = stateful ? `If its drain or backup fails, ${x.label} is terminated anyway: whatever it wrote after the newest verified backup is LOST, and the new host restores that backup (or starts empty when there is none).`
        : `If its drain fails, ${x.label} is terminated anyway.`;
      if (!window.confirm(what + `Replace a dead host: ${loss}`)) return;
      const reason = window.prompt(`Why may ${x.label}'s data be discarded? (kept in the log)`, "");
      if (reason === null) return;
      if (!reason.trim()) { setMsg(msg, false, "Discarding data needs a reason: nothing was replaced."); return; }
      body = { labels: [x.label], discard_data: true, reason: reason.trim() };
    }
    try {
      await api("POST", "/api/replace", body);
      setMsg(msg, true, `Replacing ${x.label}${body.discard_data ? " (discarding data)" : ""}…`);
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    }
    refresh();
  }

  async function applyNow() {
    const msg = $("#deploy-msg");
    try {
      await api("POST", "/api/apply");
      setMsg(msg, true, "Applying the current decisions…");
    } catch (e) {
      if (e.status !== 401) setMsg(msg, false, e.message);
    }
    chartsSoon();
    refresh();
  }

  // ---- week ----
  function renderWeek(wk) {
    $("#week-zone").textContent = wk.zone ? `scheduled hosts per hour, ${wk.zone} time; load may raise them` : "";
    const el = $("#week");
    const hours = wk.hours || [];
    if (!hours.length) { replace(el, h("div", { class: "empty" }, "No schedule.")); return; }
    // Group hours by the local date written in the timestamp itself
    // (YYYY-MM-DDTHH in the schedule's zone), so the browser's own zone
    // does not matter.
    const days = [], byDay = {};
    for (const hr of hours) {
      const day = hr.at.slice(0, 10), hour = Number(hr.at.slice(11, 13));
      if (!byDay[day]) { byDay[day] = {}; days.push(day); }
      if (byDay[day][hour] === undefined) byDay[day][hour] = hr; // the first of a repeated hour
    }
    const dst = hours.filter((hr) => hr.dst_change);
    const tables = (wk.roles || []).map((role) => {
      const r = state.roles.find((x) => x.name === role);
      const vals = hours.map((hr) => hr.counts[role] || 0);
      const lo = Math.min(...vals), hi = Math.max(...vals);
      return h("table", { class: "heat", "data-week-role": role },
        h("caption", {}, role),
        h("thead", {}, h("tr", {}, h("th", {}), [...Array(24).keys()].map((i) => h("th", {}, i % 3 === 0 ? pad(i) : "")))),
        h("tbody", {}, days.map((day, di) => h("tr", {},
          h("th", { class: "day" }, dayLabel(day)),
          [...Array(24).keys()].map((i) => {
            const hr = byDay[day][i];
            if (!hr) {
              const key = `${day}T${pad(i)}`;
              const inside = key > hours[0].at.slice(0, 13) && key < hours[hours.length - 1].at.slice(0, 13);
              return inside ? h("td", { class: "skipped", title: `${dayLabel(day)} ${pad(i)}:00 does not exist: the clocks go forward` }, "–") : h("td", { class: "none" });
            }
            const v = hr.counts[role] || 0;
            const cls = [hr.dst_change ? "dst" : "", di === 0 && hr === hours[0] ? "now" : ""].join(" ").trim();
            return h("td", { class: cls || null, style: heat(v, lo, hi), title: `${dayLabel(day)} ${pad(i)}:00 — ${role}: ${v}${hr.dst_change ? "\nclock change: " + hr.dst_change : ""}` }, v);
          })))));
    });
    replace(el, tables, dst.length ? h("div", { class: "dst-note" }, dst.map((hr) => `Clock change before ${dayLabel(hr.at.slice(0, 10))} ${hr.at.slice(11, 16)}: ${hr.dst_change}`).join(" · ")) : null);
  }
  function dayLabel(day) {
    const [y, mo, d] = day.split("-").map(Number);
    const dt = new Date(Date.UTC(y, mo - 1, d));
    return ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][dt.getUTCDay()] + " " + d;
  }
  function heat(v, lo, hi) {
    const f = hi > lo ? (v - lo) / (hi - lo) : 0; // the week's own range, for contrast
    // from pale blue-grey to a deep blue
    const a = [238, 243, 249], b = [31, 111, 235];
    const c = a.map((x, i) => Math.round(x + (b[i] - x) * Math.pow(f, 0.85)));
    return { background: `rgb(${c[0]},${c[1]},${c[2]})`, color: f > 0.55 ? "#fff" : "" };
  }

  // ---- decisions ----
  function renderDecisions(data) {
    const recs = data.decisions || [];
    const el = $("#decisions");
    const open = new Set([...el.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    if (!recs.length) { replace(el, h("div", { class: "empty" }, "No decisions recorded yet.")); return; }
    replace(el, h("div", { class: "log" }, recs.map((d) => {
      const key = d.role + "@" + d.at;
      const dir = d.desired > d.previous ? "up" : d.desired < d.previous ? "down" : "";
      return h("details", { "data-key": key, open: open.has(key) },
        h("summary", {},
          h("span", { class: "t" }, when(d.at)),
          h("span", { class: "r" }, d.role),
          h("span", { class: "c " + dir }, d.desired === d.previous ? `${d.desired}` : `${d.previous} → ${d.desired}`),
          h("span", {}, h("span", { class: "chip winner" }, d.winner), " ", summaryText(d))),
        explain(d));
    })));
  }
  function summaryText(d) {
    const won = (d.inputs || []).find((i) => i.won);
    let t = won ? won.detail : "";
    if (d.steps && d.steps.length) t += (t ? "; " : "") + d.steps.map((x) => x.kind).join(", ");
    return t;
  }
  function explain(d) {
    return h("div", { class: "explain" },
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "input"), h("th", { class: "num" }, "hosts"), h("th", {}, "why"))),
        h("tbody", {}, (d.inputs || []).map((i) => h("tr", { class: i.won ? "won" : null },
          h("td", { class: "mono" }, (i.won ? "★ " : "") + i.source), h("td", { class: "num" }, i.count), h("td", {}, i.detail))))),
      d.steps && d.steps.length ? h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "then"), h("th", { class: "num" }, "from → to"), h("th", {}, "why"))),
        h("tbody", {}, d.steps.map((st) => h("tr", {}, h("td", { class: "mono" }, st.kind), h("td", { class: "num" }, `${st.from} → ${st.to}`), h("td", {}, st.detail))))) : null,
      h("div", { class: "small muted" }, `result: ${d.desired} hosts, set by ${d.winner}` +
        (d.load !== undefined ? ` · load ${fmtNum(d.load)}` : "") + (d.forecast !== undefined ? ` · forecast ${fmtNum(d.forecast)}` : "") +
        (d.frozen ? " · frozen: load metric missing or stale" : "")));
  }

  // ---- start ----
  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromFragment();
    $("#login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = ev.target.token.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      ev.target.token.value = "";
      signIn();
    });
    $("#logout").addEventListener("click", () => signOut(""));
    $("#override-form").addEventListener("submit", submitOverride);
    $("#override-form [name=role]").addEventListener("change", (ev) => {
      const r = state.roles.find((x) => x.name === ev.target.value);
      if (r && r.decision) $("#override-form [name=count]").value = r.decision.desired;
    });
    $("#deploy-form").addEventListener("submit", submitDeploy);
    $("#apply").addEventListener("click", applyNow);
    $("#rollback").addEventListener("click", rollbackOneStep);
    $("#deploy-form [name=app]").addEventListener("change", () => {
      replace($("#releases-summary"), "loading…");
      replace($("#release-list"));
      $("#rollback").disabled = true;
      state.releases = null;
      if (state.features.includes("releases")) loadReleases().catch(() => {});
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { state.lastSlow = 0; refresh(); }, 300); });
    window.addEventListener("hashchange", () => {
      // A sign-in link opened in a tab that already shows the page.
      if (/token=/.test(location.hash)) { takeTokenFromFragment(); signIn(); }
    });
    if (token()) signIn(); else signOut("");
  });
})();
