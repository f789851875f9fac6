/*
 * aaiti web console. Served by the daemon's admin endpoint with everything it needs; no build step.
 *
 * Login: the token goes once to POST /console/login in an Authorization header; the answer sets an
 * HttpOnly SameSite=Strict session cookie, which every later request (fetch, EventSource) carries.
 * The token is never stored and never put in a URL.
 *
 * Live data: GET /console/state?follow=1 (Server-Sent Events: "state" every second, "charts" when
 * the candles, fills or price levels changed) and GET /logs?follow=1 for the log tail.
 *
 * All data is written with textContent (never as HTML). The script marks its progress on <html>
 * for tests and tools: data-auth ("login" / "in"), data-ready ("true" once the first state is
 * drawn), data-state-seq (states drawn), data-trading-state, data-kill-switch.
 *
 * Numbers are printed as the CLI prints them (daemon/cli_format.py): prices at their instrument's
 * tick size places, sizes at its step size, money at its asset's precision, from the state's
 * "precision" block; rounded half-even on the decimal string itself (never through a float).
 * window.aaitiFormat.number(value, places) is that formatter, for tests and tools.
 */
"use strict";

(() => {
  const root = document.documentElement;
  const byId = (id) => document.getElementById(id);
  const LEVELS = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };
  const MAX_LOG = 500;
  const COLORS = { up: "#0a7a3d", down: "#b42318", blue: "#1d4ed8", grid: "#eef1f4", text: "#1f2328" };
  const RESUME_CONFIRMATION = "resume-after-kill";

  const ui = {
    stateStream: null,
    logStream: null,
    seq: 0,
    equityChart: null,
    equitySeries: null,
    markets: new Map(), // symbol -> {figure, select, chart, candles, markers, lines, timeframe}
    lastCharts: null,
    logs: [],
    precision: null, // the state's "precision" block: {tick, step, quote, asset, equity_asset}
  };

  // -- helpers ------------------------------------------------------------------------------
  const text = (value) => (value === null || value === undefined || value === "" ? "–" : String(value));
  const time = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–");
  const sign = (value) => {
    const n = Number(value);
    return !value || Number.isNaN(n) || n === 0 ? "" : n > 0 ? "up" : "down";
  };

  // -- numbers at their precision (mirrors daemon/cli_format.py: format_number, Precision.places) ----
  const PRICE_KEYS = new Set(["price", "avg_price", "limit_price", "trigger_price", "mark", "open", "high", "low",
    "close"]);
  const SIZE_KEYS = new Set(["size", "filled", "volume", "display_size", "protected"]);
  const MONEY_KEYS = new Set(["realized_pnl", "unrealized_pnl", "pnl", "fees", "fee", "notional", "equity",
    "equity_peak", "day_start_equity", "daily_pnl", "gross_exposure", "free", "locked", "total"]);
  const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
  const MAX_EXPONENT = 400; // a "number" beyond this is printed as it is rather than as a wall of zeros

  /** A decimal string (or JS number) as {negative, coef: BigInt, exp}, or null if it is not a finite number. */
  function parseDecimal(value) {
    const m = DECIMAL.exec(String(value).trim());
    if (!m) return null;
    const whole = m[2];
    const frac = m[3] || "";
    if (!whole && !frac) return null;
    const exp = Number(m[4] || 0) - frac.length;
    if (!Number.isSafeInteger(exp) || Math.abs(exp) > MAX_EXPONENT) return null;
    return { negative: m[1] === "-", coef: BigInt(whole + frac), exp };
  }

  /**
   * A number as plain text, like cli_format.format_number: never an exponent, every zero as "0".
   * With places (an integer) rounded half-even to that many decimals and printed with all of them
   * ("0.00141400"), else printed exactly, without trailing zeros. Anything else comes back unchanged.
   */
  function formatNumber(value, places) {
    if ((typeof value !== "string" && typeof value !== "number") || value === "") return value;
    const d = parseDecimal(value);
    if (!d) return value;
    let { coef, exp } = d;
    if (Number.isInteger(places) && places >= 0) {
      if (exp < -places) {
        const unit = 10n ** BigInt(-places - exp);
        const half = unit / 2n;
        const rest = coef % unit;
        coef /= unit;
        if (rest > half || (rest === half && coef % 2n === 1n)) coef += 1n;
      } else {
        coef *= 10n ** BigInt(exp + places);
      }
      exp = -places;
    } else {
      while (coef !== 0n && coef % 10n === 0n) {
        coef /= 10n;
        exp += 1;
      }
    }
    if (coef === 0n) return "0";
    let digits = coef.toString();
    if (exp >= 0) digits += "0".repeat(exp);
    else {
      digits = digits.padStart(1 - exp, "0");
      digits = `${digits.slice(0, exp)}.${digits.slice(exp)}`;
    }
    return (d.negative ? "-" : "") + digits;
  }
  window.aaitiFormat = Object.freeze({ number: formatNumber });

  /** Decimal places of row[key] like cli_format.Precision.places (null: print it as it is). */
  function places(key, row) {
    const p = ui.precision;
    if (!p) return null;
    const lookup = (map, name) => (typeof name === "string" && map && Object.hasOwn(map, name) ? map[name] : null);
    const symbol = row.symbol;
    if (PRICE_KEYS.has(key)) return lookup(p.tick, symbol);
    if (SIZE_KEYS.has(key)) return lookup(p.step, symbol);
    if (MONEY_KEYS.has(key)) {
      if (key === "fee" && row.fee_currency) return lookup(p.asset, String(row.fee_currency));
      const money = row.asset || (typeof symbol === "string" ? lookup(p.quote, symbol) : p.equity_asset);
      return money ? lookup(p.asset, String(money)) : null;
    }
    return null;
  }

  /** row[key] at its precision; value instead of row[key] for a number kept outside row (a leg's, the risk's). */
  const num = (key, row, value = row[key]) => formatNumber(value, places(key, row));

  async function api(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...(headers || {}) } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    return { status: resp.status, ok: resp.ok, data };
  }

  /** Keep one <tr> per key (focus inside a row survives updates); render(item, tr) fills it. */
  function syncRows(tbody, items, keyOf, render) {
    const existing = new Map();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key, tr);
    const wanted = items.map((item) => {
      const key = String(keyOf(item));
      let tr = existing.get(key);
      if (tr) existing.delete(key);
      else {
        tr = document.createElement("tr");
        tr.dataset.key = key;
      }
      render(item, tr);
      return tr;
    });
    for (const tr of existing.values()) tr.remove();
    wanted.forEach((tr, i) => {
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    tbody.dataset.count = String(items.length);
  }

  /** Cells of a row: [field, value, signed?]; only changed text is written. */
  function setCells(tr, cells) {
    while (tr.cells.length < cells.length) tr.appendChild(document.createElement("td"));
    cells.forEach(([field, value, signed], i) => {
      const td = tr.cells[i];
      td.dataset.field = field;
      const shown = text(value);
      if (td.textContent !== shown) td.textContent = shown;
      if (signed) td.dataset.sign = sign(value);
    });
  }

  function setBadge(id, status, label) {
    const el = byId(id);
    el.dataset.status = status;
    el.textContent = label;
  }

  // -- state ---------------------------------------------------------------------------------
  function renderState(s) {
    if (s.precision) ui.precision = s.precision;
    const status = s.status || {};
    byId("daemon-name").textContent = status.name || "";
    byId("daemon-mode").textContent = status.mode || "";
    setBadge("health", s.health.status, s.health.status);
    setBadge("readiness", s.ready ? "ready" : "not-ready", s.ready ? "ready" : "not ready");
    setBadge("trading", s.trading_state, s.trading_state + (s.kill_switch ? " (killed)" : ""));
    byId("trading-state").textContent = s.trading_state + (s.kill_switch ? ", kill switch engaged" : "");
    root.dataset.tradingState = s.trading_state;
    root.dataset.killSwitch = String(Boolean(s.kill_switch));
    if (!s.kill_switch) byId("resume-confirm").hidden = true;

    const reasons = [...s.health.reasons.map((r) => "health: " + r), ...s.not_ready.map((r) => "not ready: " + r),
      ...(s.problems || [])];
    const list = byId("health-reasons");
    list.replaceChildren(...(reasons.length ? reasons : ["all good"]).map((r) => {
      const li = document.createElement("li");
      li.textContent = r;
      return li;
    }));
    syncRows(byId("breakers"), s.breakers || [], (b) => b.name, (b, tr) => setCells(tr, [
      ["name", b.name], ["state", b.state], ["trips", b.trips], ["latched", b.latched ? "yes" : "no"],
      ["reason", b.reason]]));
    const reconnects = Object.entries(s.reconnects || {});
    byId("reconnects").textContent = reconnects.length ? reconnects.map(([k, v]) => `${k}: ${v}`).join(", ") : "none";

    renderRisk(s.risk);
    syncRows(byId("positions"), s.positions, (p) => p.symbol, (p, tr) => setCells(tr, [
      ["symbol", p.symbol], ["size", num("size", p)], ["avg_price", num("avg_price", p)], ["mark", num("mark", p)],
      ["unrealized_pnl", num("unrealized_pnl", p), true], ["realized_pnl", num("realized_pnl", p), true],
      ["fees", num("fees", p)], ["fills", p.fills]]));
    syncRows(byId("balances"), s.balances || [], (b) => b.asset, (b, tr) => setCells(tr, [
      ["asset", b.asset], ["total", num("total", b)], ["free", num("free", b)], ["locked", num("locked", b)]]));
    syncRows(byId("orders"), s.open_orders, (o) => o.client_order_id, renderOrder);
    const contingent = s.contingent || [];
    syncRows(byId("contingent"), contingent, (c) => c.id, renderContingent);
    byId("contingent-empty").hidden = contingent.length > 0;
    syncRows(byId("fills"), s.fills, (f) => `${f.venue}/${f.trade_id}`, (f, tr) => setCells(tr, [
      ["ts", time(f.ts_ms)], ["symbol", f.symbol], ["side", f.side], ["size", num("size", f)],
      ["price", num("price", f)], ["fee", `${num("fee", f)} ${f.fee_currency || ""}`.trim()],
      ["client_order_id", f.client_order_id]]));
    syncRows(byId("denials"), s.denials, (d) => d.id ?? `${d.ts_ms}/${d.reason}`, (d, tr) => setCells(tr, [
      ["ts", time(d.ts_ms)], ["reason", d.reason], ["strategy", d.strategy], ["symbol", d.symbol],
      ["limit", d.limit], ["detail", d.detail]]));
    renderEquity(s.equity || []);

    ui.seq += 1;
    root.dataset.stateSeq = String(ui.seq);
    if (root.dataset.ready !== "true") root.dataset.ready = "true";
  }

  function renderRisk(risk) {
    const dl = byId("risk");
    if (!risk) {
      dl.replaceChildren();
      return;
    }
    // Money of the whole account: at the equity asset's precision (no symbol, like the CLI's risk view).
    const facts = [["Equity", num("equity", {}, risk.equity)], ["Daily PnL", num("daily_pnl", {}, risk.daily_pnl)],
      ["Drawdown %", risk.drawdown_pct], ["Gross exposure", num("gross_exposure", {}, risk.gross_exposure)],
      ["Open orders", risk.open_orders],
      ["Denied", Object.entries(risk.denied_by_reason || {}).map(([k, v]) => `${k} ${v}`).join(", ")]];
    dl.replaceChildren(...facts.flatMap(([label, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = text(value);
      dd.dataset.field = label;
      return [dt, dd];
    }));
  }

  /** An order's price cell: its limit price, and a native conditional order's trigger price. */
  function orderPrice(o) {
    const price = o.price === null || o.price === undefined ? "" : num("price", o);
    if (o.trigger_price === null || o.trigger_price === undefined) return price;
    return `${price} (trigger ${num("trigger_price", o)})`.trim();
  }

  function renderOrder(o, tr) {
    setCells(tr, [["client_order_id", o.client_order_id], ["strategy", o.strategy], ["symbol", o.symbol],
      ["side", o.side], ["type", o.type], ["size", num("size", o)], ["price", orderPrice(o)],
      ["filled", num("filled", o)], ["status", o.status]]);
    if (tr.cells.length < 10) {
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Cancel";
      button.setAttribute("aria-label", `Cancel order ${o.client_order_id}`);
      button.addEventListener("click", () => cancelOrder(o.client_order_id));
      td.appendChild(button);
      tr.appendChild(td);
    }
  }

  /** A contingent order's legs in a few words: "take_profit 2.1 @ 0.00051 | stop_loss trailing 0.00047". */
  function legsSummary(c) {
    const row = { symbol: c.symbol }; // a leg's numbers are at its order's instrument's precision
    return (c.legs || []).map((leg) => {
      const parts = [leg.name];
      const trigger = leg.trigger_price ? num("trigger_price", row, leg.trigger_price) : "";
      const limit = leg.limit_price ? num("limit_price", row, leg.limit_price) : "";
      if (leg.trailing) parts.push("trailing", trigger, `(${leg.trailing})`);
      else {
        if (leg.size !== null && leg.size !== undefined) parts.push(num("size", row, leg.size));
        if (trigger) parts.push("@", trigger);
        else if (limit) parts.push("@", limit);
        if (trigger && limit) parts.push("→", limit);
      }
      return parts.filter((p) => p !== "").join(" ");
    }).join(" | ");
  }

  function renderContingent(c, tr) {
    setCells(tr, [["id", c.id], ["strategy", c.strategy], ["symbol", c.symbol], ["kind", c.kind], ["mode", c.mode],
      ["status", c.status], ["legs", legsSummary(c)], ["protected", num("protected", c)]]);
    tr.dataset.kind = c.kind;
    tr.dataset.mode = c.mode;
    if (tr.cells.length < 9) {
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Cancel";
      button.setAttribute("aria-label", `Cancel protective order ${c.id}`);
      button.addEventListener("click", () => cancelContingent(c.id));
      td.appendChild(button);
      tr.appendChild(td);
    }
  }

  // -- charts --------------------------------------------------------------------------------
  function newChart(element) {
    return LightweightCharts.createChart(element, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: COLORS.text, attributionLogo: true },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
  }

  /**
   * The price axis format: the instrument's tick places when known, else enough decimals for small
   * prices (0.0014 ETH per XRP): four significant digits at least.
   */
  function priceFormat(price, tickPlaces) {
    if (Number.isInteger(tickPlaces) && tickPlaces >= 0) {
      return { type: "price", precision: tickPlaces, minMove: 10 ** -tickPlaces };
    }
    const magnitude = Math.abs(Number(price)) || 1;
    const precision = Math.min(10, Math.max(2, Math.ceil(-Math.log10(magnitude)) + 4));
    return { type: "price", precision, minMove: 10 ** -precision };
  }

  function renderEquity(samples) {
    const element = byId("equity-chart");
    if (!ui.equityChart) {
      ui.equityChart = newChart(element);
      ui.equitySeries = ui.equityChart.addSeries(LightweightCharts.LineSeries, { color: COLORS.blue, lineWidth: 2 });
    }
    if (Number(element.dataset.points) === samples.length && element.dataset.last === String(samples.at(-1)?.ts_ms)) {
      return;
    }
    const points = [];
    for (const sample of samples) {
      const t = Math.floor(sample.ts_ms / 1000);
      if (points.length && points.at(-1).time >= t) continue; // the axis must rise strictly
      points.push({ time: t, value: Number(sample.equity) });
    }
    if (points.length) ui.equitySeries.applyOptions({ priceFormat: priceFormat(points.at(-1).value) });
    ui.equitySeries.setData(points);
    element.dataset.points = String(samples.length);
    element.dataset.last = String(samples.at(-1)?.ts_ms);
  }

  function timeframeSeconds(tf) {
    const m = /^(\d+)([smhdw])$/.exec(tf || "");
    if (!m) return 60;
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
  }

  function market(symbol) {
    let m = ui.markets.get(symbol);
    if (m) return m;
    const figure = document.createElement("figure");
    figure.className = "market";
    figure.dataset.symbol = symbol;
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.textContent = symbol;
    const select = document.createElement("select");
    select.setAttribute("aria-label", `Timeframe of the ${symbol} chart`);
    caption.append(name, select);
    const element = document.createElement("div");
    element.className = "chart";
    element.setAttribute("role", "img");
    element.setAttribute("aria-label", `${symbol} candles with fills and open order levels`);
    figure.append(caption, element);
    byId("charts").appendChild(figure);
    const chart = newChart(element);
    const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
      wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    m = { figure, select, element, chart, candles, markers: LightweightCharts.createSeriesMarkers(candles, []),
      lines: [], timeframe: null };
    select.addEventListener("change", () => {
      m.timeframe = select.value;
      if (ui.lastCharts) renderCharts(ui.lastCharts);
    });
    ui.markets.set(symbol, m);
    return m;
  }

  function renderCharts(charts) {
    ui.lastCharts = charts;
    const bySymbol = new Map();
    for (const s of charts.series) {
      if (!bySymbol.has(s.symbol)) bySymbol.set(s.symbol, []);
      bySymbol.get(s.symbol).push(s);
    }
    for (const [symbol, list] of bySymbol) {
      const m = market(symbol);
      const tfs = list.map((s) => s.timeframe);
      if (Array.from(m.select.options).map((o) => o.value).join() !== tfs.join()) {
        m.select.replaceChildren(...tfs.map((tf) => new Option(tf, tf)));
      }
      if (!tfs.includes(m.timeframe)) m.timeframe = tfs[0];
      m.select.value = m.timeframe;
      drawMarket(m, list.find((s) => s.timeframe === m.timeframe));
    }
    byId("charts").dataset.series = String(bySymbol.size);
  }

  function drawMarket(m, series) {
    const step = timeframeSeconds(series.timeframe);
    const bars = series.bars.map(([t, open, high, low, close]) => ({ time: t, open, high, low, close }));
    const row = { symbol: series.symbol };
    if (bars.length) m.candles.applyOptions({ priceFormat: priceFormat(bars.at(-1).close, places("close", row)) });
    m.candles.setData(bars);
    const first = bars.length ? bars[0].time : 0;
    const last = bars.length ? bars.at(-1).time + step : 0;
    const markers = [];
    for (const f of series.fills) {
      const t = Math.floor(f.ts_ms / 1000 / step) * step; // the bar the fill happened in
      if (t < first || t >= last) continue;
      const buy = f.side === "buy";
      markers.push({ time: t, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
        color: buy ? COLORS.blue : COLORS.down, text: `${f.side} ${num("size", f)}` });
    }
    markers.sort((a, b) => a.time - b.time);
    m.markers.setMarkers(markers);
    for (const line of m.lines) m.candles.removePriceLine(line);
    m.lines = series.levels.map((level) => m.candles.createPriceLine({
      price: Number(level.price), color: level.side === "buy" ? COLORS.blue : COLORS.down, lineWidth: 1,
      lineStyle: LightweightCharts.LineStyle.Dashed, axisLabelVisible: true,
      title: `${level.side} ${num("size", row, level.size)} (${level.type})`,
    }));
    m.element.dataset.bars = String(bars.length);
    m.element.dataset.markers = String(markers.length);
    m.element.dataset.priceLines = String(m.lines.length);
    m.figure.dataset.timeframe = series.timeframe;
  }

  // -- log tail ------------------------------------------------------------------------------
  function logLine(rec) {
    const li = document.createElement("li");
    li.dataset.level = rec.level || "info";
    li.dataset.event = rec.event || "";
    const skip = new Set(["timestamp", "level", "event", "actor", "logger"]);
    const fields = Object.entries(rec).filter(([k]) => !skip.has(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
    const actor = rec.actor ? ` [${rec.actor}]` : "";
    li.textContent = `${(rec.timestamp || "").slice(11, 23)} ${(rec.level || "").toUpperCase()} ${rec.event}${actor} ${fields}`
      .slice(0, 2000);
    return li;
  }

  function visible(rec) {
    return (LEVELS[rec.level] || 20) >= LEVELS[byId("log-level").value];
  }

  function showLogs() {
    const list = byId("log-lines");
    list.replaceChildren(...ui.logs.filter(visible).map(logLine));
    list.dataset.count = String(list.children.length);
    list.scrollTop = list.scrollHeight;
  }

  function addLog(rec) {
    ui.logs.push(rec);
    if (ui.logs.length > MAX_LOG) ui.logs.shift();
    const list = byId("log-lines");
    if (!visible(rec)) return;
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.appendChild(logLine(rec));
    while (list.children.length > MAX_LOG) list.firstElementChild.remove();
    list.dataset.count = String(list.children.length);
    list.dataset.lastEvent = rec.event || "";
    if (stick) list.scrollTop = list.scrollHeight;
  }

  // -- commands ------------------------------------------------------------------------------
  function commandResult(status, message) {
    byId("controls").dataset.commandStatus = status;
    byId("command-result").textContent = message;
  }

  async function command(name, body) {
    byId("controls").dataset.lastCommand = name;
    commandResult("pending", `${name}…`);
    try {
      const r = await api("POST", `/${name}`, { reason: `console: ${name}`, ...(body || {}) });
      if (r.ok) {
        commandResult("ok", `${name}: trading is ${r.data.state}${r.data.kill_switch ? " (kill switch engaged)" : ""}`);
        byId("resume-confirm").hidden = true;
      } else if (name === "resume" && r.data && r.data.error === "kill_switch_engaged") {
        commandResult("refused", "Trading was killed: confirm below to lift the kill switch.");
        byId("resume-confirm").hidden = false;
        byId("resume-cancel").focus();
      } else {
        commandResult(r.status === 409 ? "refused" : "error", `${name}: ${r.data ? r.data.message : r.status}`);
      }
    } catch (err) {
      commandResult("error", `${name}: ${err}`);
    }
    await refresh();
  }

  async function cancelOrder(clientOrderId) {
    byId("controls").dataset.lastCommand = "cancel";
    const r = await api("POST", `/orders/${encodeURIComponent(clientOrderId)}/cancel`, { reason: "console: cancel" });
    commandResult(r.ok ? "ok" : "refused", r.ok ? `cancel requested for ${clientOrderId}`
      : `cancel ${clientOrderId}: ${r.data ? r.data.message : r.status}`);
    await refresh();
  }

  async function cancelContingent(id) {
    byId("controls").dataset.lastCommand = "cancel-contingent";
    const r = await api("POST", `/contingent/${encodeURIComponent(id)}/cancel`, { reason: "console: cancel" });
    commandResult(r.ok ? "ok" : "refused", r.ok ? `cancel requested for protective order ${id}`
      : `cancel ${id}: ${r.data ? r.data.message : r.status}`);
    await refresh();
  }

  async function refresh() {
    const r = await api("GET", "/console/state");
    if (r.ok) {
      renderState(r.data);
      if (r.data.charts) renderCharts(r.data.charts);
    }
  }

  // -- session and streams ---------------------------------------------------------------------
  function showLogin(message) {
    stopStreams();
    root.dataset.auth = "login";
    byId("app").hidden = true;
    byId("login").hidden = false;
    byId("login-error").textContent = message || "";
    byId("token").focus();
  }

  function stopStreams() {
    for (const key of ["stateStream", "logStream"]) {
      if (ui[key]) ui[key].close();
      ui[key] = null;
    }
  }

  async function lost() {
    setBadge("conn", "down", "reconnecting");
    const r = await api("GET", "/console/session");
    if (r.ok && !r.data.authenticated) showLogin("Your session ended; log in again.");
  }

  function startStreams() {
    const state = new EventSource("/console/state?follow=1");
    state.addEventListener("open", () => setBadge("conn", "live", "live"));
    state.addEventListener("state", (ev) => {
      setBadge("conn", "live", "live");
      renderState(JSON.parse(ev.data));
    });
    state.addEventListener("charts", (ev) => renderCharts(JSON.parse(ev.data)));
    state.addEventListener("end", () => {
      state.close();
      lost();
    });
    state.addEventListener("problem", (ev) => setBadge("conn", "down", JSON.parse(ev.data).message));
    state.addEventListener("error", () => lost());
    ui.stateStream = state;

    const logs = new EventSource("/logs?follow=1&n=200");
    logs.addEventListener("log", (ev) => addLog(JSON.parse(ev.data)));
    logs.addEventListener("end", () => logs.close());
    ui.logStream = logs;
  }

  async function loadBacktests() {
    const r = await api("GET", "/console/backtests");
    const list = byId("backtests");
    if (!r.ok) return;
    byId("backtests-note").textContent = r.data.exists
      ? (r.data.reports.length ? "" : `No reports in ${r.data.directory}.`)
      : "No backtests directory next to the config.";
    list.replaceChildren(...r.data.reports.map((rep) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = rep.url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = rep.name;
      li.append(a, ` (${time(rep.modified_ms)})`);
      return li;
    }));
    list.dataset.count = String(r.data.reports.length);
  }

  function enter() {
    root.dataset.auth = "in";
    byId("login").hidden = true;
    byId("app").hidden = false;
    startStreams();
    loadBacktests();
  }

  async function login(event) {
    event.preventDefault();
    const input = byId("token");
    const token = input.value.trim();
    input.value = "";
    if (!token) return;
    const r = await api("POST", "/console/login", undefined, { Authorization: `Bearer ${token}` });
    if (r.ok) enter();
    else showLogin(r.status === 401 ? "That token is not valid." : `Login failed (${r.status}).`);
  }

  async function logout() {
    await api("POST", "/console/logout");
    showLogin("Logged out.");
  }

  function wire() {
    byId("login-form").addEventListener("submit", login);
    byId("logout").addEventListener("click", logout);
    for (const button of document.querySelectorAll("button[data-command]")) {
      button.addEventListener("click", () => command(button.dataset.command));
    }
    byId("resume-confirm-button").addEventListener("click", () => command("resume", { confirm: RESUME_CONFIRMATION }));
    byId("resume-cancel").addEventListener("click", () => {
      byId("resume-confirm").hidden = true;
      commandResult("idle", "Kept halted.");
      byId("resume").focus();
    });
    byId("log-level").addEventListener("change", showLogs);
  }

  async function main() {
    wire();
    const r = await api("GET", "/console/session");
    if (r.ok && r.data.authenticated) enter();
    else showLogin("");
  }

  main().catch((err) => {
    root.dataset.ready = "error";
    console.error("console failed to start", err);
  });
})();
