/*
 * aaiti backtest report: draws the interactive charts of a self-contained report page.
 *
 * Inlined into the page after the vendored TradingView Lightweight Charts (v5 API:
 * chart.addSeries(Kind), createSeriesMarkers). Reads the result dict from the
 * <script type="application/json" id="backtest-data"> tag and fills every element with a
 * data-chart attribute ("candles" with data-symbol, "equity", "drawdown"). The tables are
 * plain HTML and need none of this.
 *
 * When every chart has been drawn it sets data-ready="true" on <html> (tests wait for it
 * instead of sleeping); on any error it sets data-ready="error" and logs to the console.
 * window.aaitiReport.charts lists the chart objects so tests can inspect what was drawn.
 */
(function () {
  "use strict";

  const root = document.documentElement;
  const COLORS = {
    text: "#1f2933",
    grid: "#eef1f4",
    border: "#c8ced6",
    up: "#0a7a3d",
    down: "#b42318",
    entry: "#1d4ed8",
    fill: "#6b7280",
    equity: "#1d4ed8",
  };
  const HEIGHTS = { candles: 360, equity: 260, drawdown: 180 };

  function fail(error) {
    root.setAttribute("data-ready", "error");
    console.error("backtest report: " + (error && error.stack ? error.stack : String(error)));
  }

  // Decimals that show ~5 significant digits of a typical value (prices like 0.0015 need 7).
  function precisionFor(values) {
    const finite = values.filter((v) => Number.isFinite(v) && v !== 0).map(Math.abs);
    if (finite.length === 0) return 2;
    finite.sort((a, b) => a - b);
    const typical = finite[Math.floor(finite.length / 2)];
    const decimals = Math.ceil(-Math.log10(typical)) + 4;
    return Math.min(10, Math.max(2, decimals));
  }

  function priceFormat(values) {
    const precision = precisionFor(values);
    return { type: "price", precision: precision, minMove: Math.pow(10, -precision) };
  }

  // Chart time is UTC seconds, strictly increasing: keep the last point of equal seconds.
  function toSeriesPoints(rows, timeOf, pointOf) {
    const points = [];
    for (const row of rows) {
      const time = Math.floor(timeOf(row) / 1000);
      const point = pointOf(row);
      point.time = time;
      if (points.length > 0 && points[points.length - 1].time >= time) {
        if (points[points.length - 1].time === time) points[points.length - 1] = point;
        continue;
      }
      points.push(point);
    }
    return points;
  }

  function newChart(element, kind) {
    const chart = LightweightCharts.createChart(element, {
      width: element.clientWidth,
      height: HEIGHTS[kind],
      layout: {
        background: { type: "solid", color: "#ffffff" },
        textColor: COLORS.text,
        fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        attributionLogo: true,
      },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      // One width for every chart so the time axes of stacked charts line up.
      rightPriceScale: { borderColor: COLORS.border, minimumWidth: 84 },
      timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false },
    });
    return chart;
  }

  // Index of the last bar opening at or before tsMs (bars sorted by open time), else 0.
  function barIndexAt(bars, tsMs) {
    let lo = 0;
    let hi = bars.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (bars[mid][0] <= tsMs) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  function tradeMarkers(symbol, bars, trades, fills) {
    const timeAt = (tsMs) => Math.floor(bars[barIndexAt(bars, tsMs)][0] / 1000);
    const markers = [];
    const covered = new Set();
    for (const trade of trades) {
      if (trade.symbol !== symbol) continue;
      covered.add(trade.strategy + "|" + trade.entry_ts_ms);
      covered.add(trade.strategy + "|" + trade.exit_ts_ms);
      markers.push({
        time: timeAt(trade.entry_ts_ms),
        position: "belowBar",
        shape: "arrowUp",
        color: COLORS.entry,
      });
      const won = !String(trade.profit).startsWith("-");
      markers.push({
        time: timeAt(trade.exit_ts_ms),
        position: "aboveBar",
        shape: "arrowDown",
        color: won ? COLORS.up : COLORS.down,
        text: trade.exit_reason || "exit",
      });
    }
    // Fills that belong to no closed trade (an open position at the end, partial fills).
    for (const fill of fills) {
      if (fill.symbol !== symbol || covered.has(fill.strategy + "|" + fill.ts_ms)) continue;
      const buy = fill.side === "buy";
      markers.push({
        time: timeAt(fill.ts_ms),
        position: buy ? "belowBar" : "aboveBar",
        shape: "circle",
        color: COLORS.fill,
        text: buy ? "buy" : "sell",
      });
    }
    markers.sort((a, b) => a.time - b.time);
    return markers;
  }

  function drawCandles(element, result, charts) {
    const symbol = element.dataset.symbol;
    const series = (result.candles || {})[symbol];
    const bars = series ? series.bars : [];
    const chart = newChart(element, "candles");
    const points = toSeriesPoints(bars, (b) => b[0], (b) => ({ open: b[1], high: b[2], low: b[3], close: b[4] }));
    const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {
      upColor: COLORS.up,
      downColor: COLORS.down,
      borderVisible: false,
      wickUpColor: COLORS.up,
      wickDownColor: COLORS.down,
      priceFormat: priceFormat(points.map((p) => p.close)),
    });
    candles.setData(points);
    if (bars.length > 0) {
      LightweightCharts.createSeriesMarkers(candles, tradeMarkers(symbol, bars, result.trades || [], result.fills || []));
    }
    chart.timeScale().fitContent();
    charts.push({ kind: "candles", symbol: symbol, element: element, chart: chart });
  }

  function drawEquity(element, result, charts) {
    const chart = newChart(element, "equity");
    const points = toSeriesPoints(result.equity || [], (s) => s[0], (s) => ({ value: s[1] }));
    const line = chart.addSeries(LightweightCharts.AreaSeries, {
      lineColor: COLORS.equity,
      topColor: "rgba(29, 78, 216, 0.25)",
      bottomColor: "rgba(29, 78, 216, 0.02)",
      lineWidth: 2,
      priceFormat: priceFormat(points.map((p) => p.value)),
    });
    line.setData(points);
    chart.timeScale().fitContent();
    charts.push({ kind: "equity", symbol: null, element: element, chart: chart });
  }

  function drawDrawdown(element, result, charts) {
    const chart = newChart(element, "drawdown");
    // Drawn below zero whatever sign the producer used: a drawdown is a fall from the peak.
    const points = toSeriesPoints(result.equity || [], (s) => s[0], (s) => ({ value: -Math.abs(s[2]) }));
    const area = chart.addSeries(LightweightCharts.AreaSeries, {
      lineColor: COLORS.down,
      topColor: "rgba(180, 35, 24, 0.05)",
      bottomColor: "rgba(180, 35, 24, 0.35)",
      invertFilledArea: true,
      lineWidth: 1,
      priceFormat: { type: "percent", precision: 2, minMove: 0.01 },
    });
    area.setData(points);
    chart.timeScale().fitContent();
    charts.push({ kind: "drawdown", symbol: null, element: element, chart: chart });
  }

  // Equity and drawdown share their time axis: scrolling or zooming one moves the other.
  function linkTimeScales(charts) {
    const linked = charts.filter((c) => c.kind === "equity" || c.kind === "drawdown");
    let syncing = false;
    for (const source of linked) {
      source.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
        if (syncing || range === null) return;
        syncing = true;
        for (const target of linked) {
          if (target !== source) target.chart.timeScale().setVisibleLogicalRange(range);
        }
        syncing = false;
      });
    }
  }

  function main() {
    const result = JSON.parse(document.getElementById("backtest-data").textContent);
    const charts = [];
    const drawers = { candles: drawCandles, equity: drawEquity, drawdown: drawDrawdown };
    for (const element of document.querySelectorAll("[data-chart]")) {
      drawers[element.dataset.chart](element, result, charts);
    }
    linkTimeScales(charts);
    window.addEventListener("resize", () => {
      for (const c of charts) c.chart.resize(c.element.clientWidth, HEIGHTS[c.kind]);
    });
    window.aaitiReport = { charts: charts };
    // The library paints on the next animation frame; ready once that frame has passed.
    requestAnimationFrame(() => requestAnimationFrame(() => root.setAttribute("data-ready", "true")));
  }

  try {
    main();
  } catch (error) {
    fail(error);
  }
})();
