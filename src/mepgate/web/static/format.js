// Formatting shared by the pages' scripts, as window.mepgateFormat.
// Numbers look as the server renders them (mepgate/web/formatting.py): fixed decimals, a thin
// space between thousands, a real minus sign, and no sign on a value that rounds to zero.
// Dates and times follow the browser's locale (its language and its 12/24-hour habit).
"use strict";
window.mepgateFormat = (function () {
  const MISSING = "\u2014";

  function number(value, decimals, scale) {
    if (typeof value !== "number" || !isFinite(value)) return MISSING;
    const d = decimals || 0;
    let text = (value * (scale === undefined ? 1 : scale)).toLocaleString("en-US", {
      minimumFractionDigits: d, maximumFractionDigits: d,
    });
    if (!/[1-9]/.test(text)) text = text.replace("-", "");
    return text.replace(/,/g, "\u2009").replace(/-/g, "\u2212");
  }

  // Decimals that tell apart ticks `step` apart: 0.0004 apart needs 4, 250 apart needs 0.
  function decimalsFor(step) {
    if (!(step > 0) || !isFinite(step)) return 0;
    return Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  }

  function duration(seconds) {
    const s = Math.round(Math.abs(seconds));
    if (s < 90) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    return Math.floor(h / 24) + " days";
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
  const hourFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const monthFormat = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric" });

  function time(date) { return timeFormat.format(date); }
  function day(date) { return dateFormat.format(date); }
  function dateTime(date) { return dateTimeFormat.format(date); }

  // A time axis label in the browser's locale, as precise as the step between ticks (seconds).
  function tick(date, step) {
    if (step < 60) return timeFormat.format(date);
    if (step < 86400) return hourFormat.format(date);
    if (step < 28 * 86400) return dateFormat.format(date);
    return monthFormat.format(date);
  }

  // uPlot axis labels: times in the browser's locale with the date under the first tick of
  // each day, values with as many decimals as the step between ticks needs.
  function timeTicks(u, splits, axis, space, step) {
    let previous = null;
    return splits.map(function (seconds) {
      const date = new Date(seconds * 1000);
      const label = tick(date, step);
      const thisDay = date.toDateString();
      const first = step < 86400 && thisDay !== previous;
      previous = thisDay;
      return first ? label + "\n" + day(date) : label;
    });
  }

  function valueTicks(u, splits, axis, space, step) {
    const decimals = decimalsFor(step);
    return splits.map(function (v) { return number(v, decimals); });
  }

  return { MISSING: MISSING, number: number, decimalsFor: decimalsFor, duration: duration,
           time: time, day: day, dateTime: dateTime, tick: tick,
           timeTicks: timeTicks, valueTicks: valueTicks };
})();
