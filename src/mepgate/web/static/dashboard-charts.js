// The dashboard at a glance, per meter: charts (uPlot, vendored) of the last hour's power --
// seeded from /api/v1/history, then fed by the readings dashboard.js receives from the
// stream and passes on as "mepgate:reading" events -- and of the energy per hour for the
// last 24 hours and per day for the last 30 days (/api/v1/energy/{meter}/periods: the
// gateway's local hours and days).  The TOU tier tiles and the cost tiles follow the
// stream's "energy" events.  Sub-meter tiles (gas, water) come from /api/v1/submeters and
// outages are shaded on the hour and 24-hour charts from /api/v1/outages; a gateway without
// those answers 404 and the page shows nothing for them.
// Light on the CPU: the live chart is redrawn at most once a second, whatever the poll rate.
// window.mepgateDashboard[meter] holds each meter's charts (for the browser tests).
"use strict";
(function () {
  const fmt = window.mepgateFormat;
  const root = document.getElementById("dashboard");
  if (!root || typeof uPlot === "undefined") return;
  const skewMs = Date.parse(root.dataset.serverNow) - Date.now() || 0;
  const LIVE_SPAN_S = 3600;
  const LIVE_POINTS = 1800;  // the seed: a point per 2 s at most (uPlot draws that easily)
  const REDRAW_MS = 1000;
  const HOURS_EVERY_MS = 60 * 1000;
  const DAYS_EVERY_MS = 10 * 60 * 1000;
  const EXTRAS_EVERY_MS = 60 * 1000;  // sub-meters and outages
  const HEIGHT = 200;
  const meters = Object.create(null);  // by meter name ("constructor" is a valid one)
  window.mepgateDashboard = meters;

  function now() { return (Date.now() + skewMs) / 1000; }
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function width(el) { return Math.max(el.clientWidth, 200); }
  function q(meter) { return "meter=" + encodeURIComponent(meter); }
  function iso(seconds) { return new Date(seconds * 1000).toISOString(); }

  // JSON of `url`, or null when the gateway does not have it (404: an older gateway, a
  // feature not there yet).
  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function node(tag, text, cls) {
    const el = document.createElement(tag);
    if (text) el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }

  // -- charts -------------------------------------------------------------------------------


  // Bars grow from zero: the value scale always holds it.
  function withZero(u, min, max) {
    const low = Math.min(0, min), high = Math.max(0, max);
    const pad = (high - low) * 0.08 || 1;
    return [low < 0 ? low - pad : 0, high > 0 ? high + pad : (low < 0 ? 0 : 1)];
  }

  // Outages as shaded spans under the series (the colour of the history page's markers).
  const outageFill = css("--outage") || "rgba(220, 38, 38, 0.18)";

  function shadeOutages(state) {
    return function (u) {
      if (!state.outages.length) return;
      const ctx = u.ctx, x = u.scales.x;
      ctx.save();
      ctx.fillStyle = outageFill;
      state.outages.forEach(function (o) {
        const a = Math.max(o.start, x.min), b = Math.min(o.end === null ? now() : o.end, x.max);
        if (!(b > a)) return;
        const left = u.valToPos(a, "x", true), right = u.valToPos(b, "x", true);
        ctx.fillRect(left, u.bbox.top, Math.max(right - left, 2), u.bbox.height);
      });
      ctx.restore();
    };
  }

  function make(el, series, data, options) {
    const opts = {
      width: width(el), height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: options.range }, y: options.bars ? { range: withZero } : {} },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") }, values: fmt.timeTicks },
             { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 52, values: fmt.valueTicks }],
      series: [{ value: function (u, v) { return v === null ? fmt.MISSING : fmt.dateTime(new Date(v * 1000)); } }]
        .concat(series.map(function (s) {
          const out = {
            label: s.label, stroke: s.color, width: 1.5, spanGaps: false,
            value: function (u, v) { return fmt.number(v, s.decimals); },
          };
          if (options.bars) { out.fill = s.color; out.paths = uPlot.paths.bars({ size: [0.8, 30] }); }
          return out;
        })),
      hooks: options.hooks || {},
    };
    const chart = new uPlot(opts, data, el);
    el.dataset.points = String(data[0].length);
    return chart;
  }

  function setData(chart, el, data) {
    chart.setData(data);
    el.dataset.points = String(data[0].length);
  }

  function mean(point, field) {
    const s = point.stats[field];
    return s ? s.mean : null;
  }

  function negated(value) { return value === null || value === undefined ? null : 0 - value; }

  function powerOf(reading) {
    const i = reading.active_power_import_w, e = reading.active_power_export_w;
    return {
      imp: typeof i === "number" ? i : null,
      exp: typeof e === "number" ? negated(e) : null,
      net: typeof reading.net_power_w === "number" ? reading.net_power_w : null,
    };
  }

  function pushLive(state, t, p) {
    const live = state.liveData;
    if (live[0].length && t <= live[0][live[0].length - 1]) return;
    live[0].push(t); live[1].push(p.net); live[2].push(p.imp); live[3].push(p.exp);
    const cut = now() - LIVE_SPAN_S;
    let old = 0;
    while (old < live[0].length && live[0][old] < cut) old++;
    if (old) live.forEach(function (column) { column.splice(0, old); });
    state.dirty = true;
  }

  function seedLive(state) {
    const end = now(), start = end - LIVE_SPAN_S;
    return getJson("/api/v1/history?" + q(state.meter) + "&start=" + iso(start) + "&end=" + iso(end) +
                   "&points=" + LIVE_POINTS)
      .then(function (body) {
        const pending = state.liveData;  // readings that arrived while the seed was asked for
        state.liveData = [[], [], [], []];
        (body ? body.points : []).forEach(function (p) {
          const i = mean(p, "active_power_import_w"), e = mean(p, "active_power_export_w");
          pushLive(state, Date.parse(p.t) / 1000 + p.width_s / 2,
                   { imp: i, exp: negated(e), net: i === null || e === null ? null : i - e });
        });
        for (let k = 0; k < pending[0].length; k++) {
          pushLive(state, pending[0][k], { net: pending[1][k], imp: pending[2][k], exp: pending[3][k] });
        }
        state.seeded = true;
        state.dirty = true;
      })
      .catch(function () { state.seeded = true; });
  }

  function loadPeriods(state, period, count) {
    return getJson("/api/v1/energy/" + encodeURIComponent(state.meter) + "/periods?period=" + period +
                   "&count=" + count)
      .then(function (body) {
        if (!body) return;
        const x = [], imp = [], exp = [];
        body.periods.forEach(function (p) {
          const a = Date.parse(p.start) / 1000, b = Date.parse(p.end) / 1000;
          x.push((a + b) / 2);
          imp.push(p.import_wh === null ? null : p.import_wh / 1000);
          exp.push(p.export_wh === null ? null : negated(p.export_wh / 1000));
        });
        const first = body.periods[0], last = body.periods[body.periods.length - 1];
        state.ranges[period] = [Date.parse(first.start) / 1000, Date.parse(last.end) / 1000];
        state.periods[period] = body;
        const chart = period === "hour" ? state.hours : state.days;
        setData(chart, chart.root.parentNode, [x, imp, exp]);
      })
      .catch(function () { /* the stream's status line says when the gateway is away */ });
  }

  // -- tiers and costs ----------------------------------------------------------------------

  function valueSpan(key, text) {
    const span = node("span", text, "value");
    span.dataset.t = key;
    return span;
  }

  function renderTiers(state) {
    const energy = state.energy;
    if (!energy) return;
    const box = state.section.querySelector("[data-tiers]");
    const head = state.section.querySelector("[data-tiers-head]");
    const current = Number(box.dataset.current) || null;
    const cost = energy.cost;
    const tiles = (energy.tiers || []).map(function (t) {
      const tile = node("div", "", "tile tier" + (t.tier === current ? " current" : ""));
      tile.dataset.tier = String(t.tier);
      const title = node("h2", "Tier " + t.tier);
      if (t.tier === current) title.append(" ", node("span", "now", "badge ok"));
      const kwh = node("div", "", "import");
      kwh.append(valueSpan("today_import_wh", fmt.number(t.today_import_wh, 2, 0.001)), " \u00b7 ",
                 valueSpan("month_import_wh", fmt.number(t.month_import_wh, 1, 0.001)), " ",
                 node("span", "kWh", "unit"));
      tile.append(title, kwh);
      if (cost) {
        const money = node("div", "", "tier-cost");
        const today = node("span", fmt.number(t.today_cost, 2));
        today.dataset.t = "today_cost";
        const month = node("span", fmt.number(t.month_cost, 2));
        month.dataset.t = "month_cost";
        money.append(today, " \u00b7 ", month, " ", node("span", cost.currency, "unit"), " ",
                     node("small", "at " + fmt.number(t.price_per_kwh, 2) + "/kWh"));
        tile.append(money);
      }
      return tile;
    });
    box.replaceChildren.apply(box, tiles);
    if (head) head.hidden = tiles.length === 0;
  }

  function renderCosts(state) {
    const cost = state.energy && state.energy.cost;
    if (!cost) return;
    state.section.querySelectorAll("[data-c]").forEach(function (el) {
      el.textContent = fmt.number(cost[el.dataset.c], 2);
    });
  }

  // -- sub-meters and outages (other parts of the gateway; absent: 404, nothing shown) ---------

  const MEDIA = { gas: "Gas", water: "Water" };

  function renderSubmeters(state, list) {
    const box = state.section.querySelector("[data-submeters]");
    const shown = list.filter(function (s) { return s.medium in MEDIA; });
    state.submeters = shown;
    box.replaceChildren.apply(box, shown.map(function (s) {
      const tile = node("div", "", "tile submeter");
      tile.dataset.submeter = String(s.slot);
      tile.append(node("h2", MEDIA[s.medium] + (s.identification ? " " + s.identification : "")));
      if (s.available === false || typeof s.value !== "number") {
        tile.append(node("span", "unavailable", "status stale"));
      } else {
        tile.append(node("span", fmt.number(s.value, 3), "value"), " ", node("span", s.unit || "", "unit"));
      }
      if (s.at) tile.append(node("small", fmt.dateTime(new Date(s.at))));
      return tile;
    }));
    box.hidden = shown.length === 0;
  }

  function loadExtras(state) {
    if (state.submetersOn) {
      getJson("/api/v1/submeters?" + q(state.meter))
        .then(function (list) {
          state.answered.submeters = true;
          if (list === null) { state.submetersOn = false; renderSubmeters(state, []); return; }
          renderSubmeters(state, list);
        })
        .catch(function () {});
    }
    if (state.outagesOn) {
      const end = now(), start = end - 86400;
      getJson("/api/v1/outages?" + q(state.meter) + "&start=" + iso(start) + "&end=" + iso(end))
        .then(function (list) {
          state.answered.outages = true;
          if (list === null) { state.outagesOn = false; return; }
          state.outages = list.map(function (o) {
            return { start: Date.parse(o.start) / 1000, end: o.end ? Date.parse(o.end) / 1000 : null };
          });
          const note = state.section.querySelector("[data-outage-note]");
          note.textContent = state.outages.length
            ? state.outages.length + " power outage" + (state.outages.length > 1 ? "s" : "") +
              " in the last 24 hours (shaded)"
            : "";
          note.hidden = !state.outages.length;
          state.live.redraw(); state.hours.redraw();
        })
        .catch(function () {});
    }
  }

  // -- per meter ----------------------------------------------------------------------------

  function setUp(section) {
    const meter = section.dataset.meter;
    const imp = css("--import"), exp = css("--export"), ink = css("--ink");
    const state = {
      meter: meter, section: section, liveData: [[], [], [], []], dirty: false, seeded: false,
      outages: [], submeters: [], energy: null, ranges: {}, periods: {},
      submetersOn: true, outagesOn: true,  // off after a 404: this gateway has no such API
      answered: { submeters: false, outages: false },
    };
    const el = function (name) { return section.querySelector('[data-chart="' + name + '"]'); };
    const hooks = { drawClear: [shadeOutages(state)] };
    state.live = make(el("live"), [
      { label: "net W", color: ink, decimals: 0 },
      { label: "import W", color: imp, decimals: 0 },
      { label: "export W", color: exp, decimals: 0 },
    ], state.liveData, { range: function () { const t = now(); return [t - LIVE_SPAN_S, t]; }, hooks: hooks });
    const energySeries = [
      { label: "import kWh", color: imp, decimals: 2 },
      { label: "export kWh", color: exp, decimals: 2 },
    ];
    const rangeOf = function (period) {
      return function (u, min, max) { return state.ranges[period] || [min, max]; };
    };
    state.hours = make(el("hours"), energySeries, [[], [], []], { bars: true, range: rangeOf("hour"), hooks: hooks });
    state.days = make(el("days"), energySeries, [[], [], []], { bars: true, range: rangeOf("day") });
    meters[meter] = state;
    seedLive(state);
    loadPeriods(state, "hour", 24);
    loadPeriods(state, "day", 30);
    loadExtras(state);
    setInterval(function () { loadPeriods(state, "hour", 24); }, HOURS_EVERY_MS);
    setInterval(function () { loadPeriods(state, "day", 30); }, DAYS_EVERY_MS);
    setInterval(function () { loadExtras(state); }, EXTRAS_EVERY_MS);
  }

  document.querySelectorAll("section.meter[data-meter]").forEach(setUp);

  document.addEventListener("mepgate:reading", function (event) {
    const data = event.detail, state = meters[data.meter];
    if (!state) return;
    if (!state.seeded) {  // kept until the seed is in, then appended after it
      const live = state.liveData, p = powerOf(data);
      live[0].push(Date.parse(data.at) / 1000); live[1].push(p.net); live[2].push(p.imp); live[3].push(p.exp);
    } else {
      pushLive(state, Date.parse(data.at) / 1000, powerOf(data));
    }
    const box = state.section.querySelector("[data-tiers]");
    const tier = data.current_tier === null || data.current_tier === undefined ? "" : String(data.current_tier);
    if (box && box.dataset.current !== tier) { box.dataset.current = tier; renderTiers(state); }
  });

  document.addEventListener("mepgate:energy", function (event) {
    const state = meters[event.detail.meter];
    if (!state) return;
    state.energy = event.detail;
    renderTiers(state);
    renderCosts(state);
  });

  // At most one redraw a second, of the live charts that have something new.
  setInterval(function () {
    Object.keys(meters).forEach(function (name) {
      const state = meters[name];
      if (!state.dirty || !state.seeded) return;
      state.dirty = false;
      setData(state.live, state.live.root.parentNode, state.liveData);
    });
  }, REDRAW_MS);

  let resizing = false;
  window.addEventListener("resize", function () {
    if (resizing) return;
    resizing = true;
    requestAnimationFrame(function () {
      resizing = false;
      Object.keys(meters).forEach(function (name) {
        const state = meters[name];
        [state.live, state.hours, state.days].forEach(function (chart) {
          chart.setSize({ width: width(chart.root.parentNode), height: HEIGHT });
        });
      });
    });
  });
})();
