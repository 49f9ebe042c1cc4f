// History charts: uPlot (vendored) over /api/v1/history.  A range button picks the span
// ending now; dragging across a chart fetches that stretch again at finer resolution;
// double-clicking goes back to the chosen range.  Numbers are formatted as on the dashboard
// (format.js: thin-space thousands, no minus zero, as many decimals as the ticks need); dates
// and times in the browser's locale.  A range without readings says so.  Power outages the
// meters logged (/api/v1/outages) are shaded on every chart; an open one reaches to now.
// The meter's M-Bus sub-meters (gas, water, heat: /api/v1/submeters) get two bar charts each,
// consumption per hour over the last 48 hours and per day over the last 31 days
// (/api/v1/submeters/{meter}/{slot}/history); the section stays hidden without sub-meters.
"use strict";
(function () {
  const fmt = window.mepgateFormat;
  const SPANS = { hour: 3600, day: 86400, week: 7 * 86400, month: 31 * 86400, year: 366 * 86400 };
  const POINTS = 600;
  const root = document.getElementById("history");
  const status = document.getElementById("history-status");
  const empty = document.getElementById("history-empty");
  const meter = root.dataset.meter;
  let range = "day";
  const charts = [];
  root.mepgateCharts = charts;  // for the browser tests and the curious
  let outages = [];  // [{start, end}] in epoch seconds; end null while the power is still off

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function width(el) { return Math.max(el.clientWidth, 280); }

  function mean(point, field) {
    const s = point.stats[field];
    return s ? s.mean : null;
  }

  function negated(value) { return value === null ? null : 0 - value; }  // never -0

  function columns(points) {
    const x = [], net = [], imp = [], exp = [], eImp = [], eExp = [], v1 = [], v2 = [], v3 = [];
    let prev = null;
    points.forEach(function (p) {
      x.push(Date.parse(p.t) / 1000);
      const i = mean(p, "active_power_import_w"), e = mean(p, "active_power_export_w");
      imp.push(i);
      exp.push(negated(e));
      net.push(i === null || e === null ? null : i - e);
      const f = p.forward_active_energy_wh, r = p.reverse_active_energy_wh;
      eImp.push(prev && f !== null && prev.f !== null ? (f - prev.f) / 1000 : null);
      eExp.push(prev && r !== null && prev.r !== null ? negated((r - prev.r) / 1000) : null);
      prev = { f: f, r: r };
      v1.push(mean(p, "voltage_l1_v")); v2.push(mean(p, "voltage_l2_v")); v3.push(mean(p, "voltage_l3_v"));
    });
    return { power: [x, net, imp, exp], energy: [x, eImp, eExp], voltage: [x, v1, v2, v3] };
  }

  // Decimals for a value on a chart whose scale spans from tiny to large (energy per interval:
  // a few Wh over an hour, hundreds of kWh over a year): enough to tell a quarter of the span.
  function scaleDecimals(u) {
    const y = u.scales.y;
    return Math.max(1, fmt.decimalsFor((y.max - y.min) / 4));
  }

  // Shade each outage across the plot area; counts the spans drawn (data-outages-shown).
  function shadeOutages(u) {
    const left = u.bbox.left, right = u.bbox.left + u.bbox.width;
    let shown = 0;
    u.ctx.save();
    u.ctx.fillStyle = css("--outage") || "rgba(220, 38, 38, 0.18)";
    outages.forEach(function (o) {
      const end = o.end === null ? Date.now() / 1000 : o.end;
      let x0 = Math.max(u.valToPos(o.start, "x", true), left);
      let x1 = Math.min(u.valToPos(end, "x", true), right);
      if (x1 < left || x0 > right) return;
      if (x1 - x0 < 3) {  // a short outage still shows: a stronger line, 3 px wide
        u.ctx.save();
        u.ctx.fillStyle = css("--outage-line") || "rgba(220, 38, 38, 0.7)";
        u.ctx.fillRect(x0 - 1, u.bbox.top, 3, u.bbox.height);
        u.ctx.restore();
      } else {
        u.ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      }
      shown += 1;
    });
    u.ctx.restore();
    u.root.dataset.outagesShown = String(shown);
  }

  function zoomHooks() {
    return {
      draw: [shadeOutages],
      setSelect: [function (u) {
        if (u.select.width < 5) return;
        const start = u.posToVal(u.select.left, "x");
        const end = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        load(start, end);
      }],
    };
  }

  function make(el, series, data, bars) {
    const opts = {
      width: width(el), height: 220,
      cursor: { sync: { key: "history" }, drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true } },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") }, values: fmt.timeTicks },
             { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 60, values: fmt.valueTicks }],
      series: [{ value: function (u, v) { return v === null ? fmt.MISSING : fmt.dateTime(new Date(v * 1000)); } }]
        .concat(series.map(function (s) {
          const out = {
            label: s.label, stroke: s.color, width: 1.5, spanGaps: false,
            value: function (u, v) { return fmt.number(v, s.decimals === null ? scaleDecimals(u) : s.decimals); },
          };
          if (bars) { out.fill = s.color; out.paths = uPlot.paths.bars({ size: [0.8, 40] }); }
          return out;
        })),
      hooks: zoomHooks(),
    };
    const chart = new uPlot(opts, data, el);
    el.addEventListener("dblclick", function () { loadRange(range); });
    charts.push({ chart: chart, el: el });
    return chart;
  }

  let power, energy, voltage;

  function draw(data, start, end) {
    const imp = css("--import"), exp = css("--export"), ink = css("--ink");
    if (!power) {
      power = make(document.getElementById("chart-power"), [
        { label: "net W", color: ink, decimals: 0 },
        { label: "import W", color: imp, decimals: 0 },
        { label: "export W", color: exp, decimals: 0 },
      ], data.power);
      energy = make(document.getElementById("chart-energy"), [
        { label: "import kWh", color: imp, decimals: null },
        { label: "export kWh", color: exp, decimals: null },
      ], data.energy, true);
      voltage = make(document.getElementById("chart-voltage"), [
        { label: "L1 V", color: "#6366f1", decimals: 1 },
        { label: "L2 V", color: "#0891b2", decimals: 1 },
        { label: "L3 V", color: "#a16207", decimals: 1 },
      ], data.voltage);
    } else {
      power.setData(data.power); energy.setData(data.energy); voltage.setData(data.voltage);
    }
    // Show the span asked for, however little of it holds data (a young installation).
    [power, energy, voltage].forEach(function (c) { c.setScale("x", { min: start, max: end }); });
  }

  function load(start, end) {
    const url = "/api/v1/history?meter=" + encodeURIComponent(meter) +
      "&start=" + new Date(start * 1000).toISOString() +
      "&end=" + new Date(end * 1000).toISOString() + "&points=" + POINTS;
    const outageUrl = "/api/v1/outages?meter=" + encodeURIComponent(meter) +
      "&start=" + new Date(start * 1000).toISOString() + "&end=" + new Date(end * 1000).toISOString();
    status.textContent = "loading\u2026";
    const outagesLoaded = fetch(outageUrl, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .catch(function () { return []; })
      .then(function (list) {
        outages = list.map(function (o) {
          return { start: Date.parse(o.start) / 1000, end: o.end === null ? null : Date.parse(o.end) / 1000 };
        });
        root.dataset.outages = String(outages.length);
        root.mepgateOutages = outages;
      });
    Promise.all([fetch(url, { headers: { Accept: "application/json" } }), outagesLoaded])
      .then(function (both) { const r = both[0]; if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (body) {
        const data = columns(body.points);
        draw(data, start, end);
        root.dataset.points = String(body.points.length);
        const resolution = body.points.length ? body.points[0].resolution : "none";
        status.textContent = body.points.length + " points (" + resolution + ")";
        if (body.points.length) {
          empty.hidden = true;
        } else {
          empty.textContent = "No readings between " + fmt.dateTime(new Date(start * 1000)) +
            " and " + fmt.dateTime(new Date(end * 1000)) + ". Pick a longer range, or wait for the first readings.";
          empty.hidden = false;
        }
      })
      .catch(function (error) { status.textContent = "could not load the history: " + error.message; });
  }

  function loadRange(name) {
    range = name;
    document.querySelectorAll("[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.range === name));
    });
    const end = Date.now() / 1000;
    load(end - SPANS[name], end);
  }

  document.querySelectorAll("[data-range]").forEach(function (button) {
    button.addEventListener("click", function () { loadRange(button.dataset.range); });
  });
  // -- sub-meters ------------------------------------------------------------------------------

  const MEDIA = { gas: ["Gas", "#d97706"], water: ["Water", "#0284c7"], heat: ["Heat", "#dc2626"],
                  electricity: ["Electricity", "#7c3aed"], other: ["Sub-meter", "#64748b"] };
  const SUB_SPANS = { hour: [48 * 3600, 3600], day: [31 * 86400, 86400] };  // [span, bucket]
  const SUB_HEIGHT = 180;
  const subCharts = [];  // [{slot, medium, unit, resolution, chart, el}]
  root.mepgateSubmeters = subCharts;  // for the browser tests

  function node(tag, text, className) {
    const el = document.createElement(tag);
    if (text) el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function subChart(el, sub, resolution, points, start, end) {
    const colour = MEDIA[sub.medium][1], unit = sub.unit || "";
    const half = SUB_SPANS[resolution][1] / 2;
    // A bar in the middle of its hour or day; a day's bucket starts at local midnight.
    const x = points.map(function (p) { return Date.parse(p.at) / 1000 + half; });
    const y = points.map(function (p) { return p.delta; });
    const opts = {
      width: width(el), height: SUB_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: function () { return [start, end]; } },
                y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") }, values: fmt.timeTicks },
             { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 60, values: fmt.valueTicks }],
      series: [{ value: function (u, v) { return v === null ? fmt.MISSING : fmt.dateTime(new Date(v * 1000)); } },
               { label: unit + (resolution === "hour" ? " per hour" : " per day"), stroke: colour, fill: colour,
                 width: 1, paths: uPlot.paths.bars({ size: [0.8, 40] }),
                 value: function (u, v) { return fmt.number(v, scaleDecimals(u)); } }],
    };
    const chart = new uPlot(opts, [x, y], el);
    subCharts.push({ slot: sub.slot, medium: sub.medium, unit: unit, resolution: resolution,
                     chart: chart, el: el });
  }

  function loadSubmeter(sub, box) {
    const now = Date.now() / 1000;
    return Promise.all(["hour", "day"].map(function (resolution) {
      const start = now - SUB_SPANS[resolution][0];
      const url = "/api/v1/submeters/" + encodeURIComponent(meter) + "/" + sub.slot +
        "/history?resolution=" + resolution + "&start=" + new Date(start * 1000).toISOString() +
        "&end=" + new Date(now * 1000).toISOString();
      return fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (body) {
          const el = box.querySelector('[data-resolution="' + resolution + '"]');
          subChart(el, sub, resolution, body.points, start, now);
        });
    }));
  }

  function loadSubmeters() {
    const section = document.getElementById("submeters");
    const holder = document.getElementById("submeter-charts");
    const note = document.getElementById("submeters-status");
    fetch("/api/v1/submeters?meter=" + encodeURIComponent(meter), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) {
        if (!list.length) return;
        section.hidden = false;
        return Promise.all(list.map(function (sub) {
          const medium = MEDIA[sub.medium] ? sub.medium : "other";
          sub = Object.assign({}, sub, { medium: medium });
          const box = node("div", "", "submeter");
          box.dataset.slot = String(sub.slot);
          box.dataset.medium = medium;
          const title = node("h3", MEDIA[medium][0] + (sub.identification ? " " + sub.identification : ""));
          if (sub.unit) title.append(" ", node("small", sub.unit));
          if (!sub.available) title.append(" ", node("small", "(not answering now)", "warning"));
          const pair = node("div", "", "submeter-pair");
          [["hour", "per hour"], ["day", "per day"]].forEach(function (r) {
            const cell = node("div");
            cell.append(node("h4", r[1]));
            const el = node("div", "", "chart");
            el.dataset.resolution = r[0];
            cell.append(el);
            pair.append(cell);
          });
          box.append(title, pair);
          holder.append(box);
          return loadSubmeter(sub, box);
        }));
      })
      .then(function () { root.dataset.submeters = String(subCharts.length / 2); })
      .catch(function (error) { note.textContent = "could not load the sub-meters: " + error.message; });
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.chart.setSize({ width: width(c.el), height: 220 }); });
    subCharts.forEach(function (c) { c.chart.setSize({ width: width(c.el), height: SUB_HEIGHT }); });
  });
  if (meter) { loadRange(range); loadSubmeters(); }
  else status.textContent = "no meter configured yet";
})();
