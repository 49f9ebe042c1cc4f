// Live dashboard: server-sent events from /api/v1/stream update every [data-f] element.
// EventSource reconnects by itself; the status line says when values are stale.
"use strict";
(function () {
  const STALE_MS = 10000;
  const lastUpdate = {};

  function format(value, decimals, scale) {
    if (typeof value !== "number" || !isFinite(value)) return "\u2014";
    const text = (value * scale).toLocaleString("en-US", {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    });
    return text.replace(/,/g, "\u2009").replace(/-/g, "\u2212");
  }

  function direction(net) {
    if (typeof net !== "number") return ["", ""];
    if (net > 0) return ["importing from the grid", "import"];
    if (net < 0) return ["exporting to the grid", "export"];
    return ["balanced", ""];
  }

  function apply(data) {
    const section = document.querySelector('section.meter[data-meter="' + CSS.escape(data.meter) + '"]');
    if (!section) return;
    section.querySelectorAll("[data-f]").forEach(function (el) {
      if (!(el.dataset.f in data)) return;
      el.textContent = format(data[el.dataset.f], Number(el.dataset.d), Number(el.dataset.s));
    });
    return section;
  }

  const source = new EventSource("/api/v1/stream");
  source.addEventListener("reading", function (event) {
    const data = JSON.parse(event.data);
    const section = apply(data);
    if (!section) return;
    const [text, cls] = direction(data.net_power_w);
    const dir = section.querySelector("[data-direction]");
    dir.textContent = text;
    dir.className = "direction " + cls;
    lastUpdate[data.meter] = Date.now();
    const status = section.querySelector("[data-status]");
    status.textContent = "live \u00b7 " + new Date(data.at).toLocaleTimeString();
    status.classList.remove("stale");
  });
  source.addEventListener("energy", function (event) { apply(JSON.parse(event.data)); });
  source.addEventListener("error", function () {
    document.querySelectorAll("[data-status]").forEach(function (el) {
      el.textContent = "connection lost, reconnecting\u2026";
      el.classList.add("stale");
    });
  });
  setInterval(function () {
    const now = Date.now();
    Object.keys(lastUpdate).forEach(function (meter) {
      if (now - lastUpdate[meter] < STALE_MS) return;
      const section = document.querySelector('section.meter[data-meter="' + CSS.escape(meter) + '"]');
      const status = section && section.querySelector("[data-status]");
      if (status) { status.textContent = "no new values for " + Math.round((now - lastUpdate[meter]) / 1000) + " s"; status.classList.add("stale"); }
    });
  }, 2000);
})();
