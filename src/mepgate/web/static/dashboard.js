// Live dashboard: server-sent events from /api/v1/stream update every [data-f] element, and
// /api/v1/meter, asked every few seconds, each meter's state (why it is not being read, with
// the advice and where to fix it; rejected readings; a meter clock far off).  The status line
// says how old the values are.  EventSource reconnects by itself.
// A reading's age counts from the reading's own time, on the gateway's clock (the page says
// what that clock read when it was made, data-server-now), not from when the page loaded.
"use strict";
(function () {
  const fmt = window.mepgateFormat;
  const root = document.getElementById("dashboard");
  const skewMs = root ? Date.parse(root.dataset.serverNow) - Date.now() : 0;
  const guide = root ? root.dataset.guide : "";
  const STATE_EVERY_MS = 5000;
  let connected = true;

  function section(meter) {
    return document.querySelector('section.meter[data-meter="' + CSS.escape(meter) + '"]');
  }

  function direction(net) {
    if (typeof net !== "number") return ["", ""];
    if (net > 0) return ["importing from the grid", "import"];
    if (net < 0) return ["exporting to the grid", "export"];
    return ["balanced", ""];
  }

  function apply(data) {
    const el = section(data.meter);
    if (!el) return null;
    el.querySelectorAll("[data-f]").forEach(function (v) {
      if (!(v.dataset.f in data)) return;
      v.textContent = fmt.number(data[v.dataset.f], Number(v.dataset.d), Number(v.dataset.s));
    });
    return el;
  }

  function showAge(status) {
    const at = Date.parse(status.dataset.at || "");
    if (!isFinite(at)) return;
    const age = (Date.now() + skewMs - at) / 1000;
    const staleAfter = Number(status.dataset.staleAfter) || 10;
    const when = fmt.time(new Date(at));
    if (!connected) {
      status.textContent = "connection lost, reconnecting\u2026 \u00b7 last values " + when;
      status.classList.add("stale");
    } else if (age <= staleAfter) {
      status.textContent = "live \u00b7 " + when;
      status.classList.remove("stale");
    } else {
      status.textContent = "no new values for " + fmt.duration(age) + " \u00b7 last " + when;
      status.classList.add("stale");
    }
  }

  function node(tag, text, cls) {
    const el = document.createElement(tag);
    if (text) el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }

  function showState(meter) {
    const el = section(meter.name);
    const alerts = el && el.querySelector("[data-alerts]");
    if (!alerts) return;
    const status = el.querySelector("[data-status]");
    status.dataset.staleAfter = String(meter.stale_after_s);
    const parts = [];
    const d = meter.diagnosis;
    if (d) {
      const box = node("div", "", "diagnosis");
      box.dataset.diagnosis = d.code;
      const head = node("p");
      const badge = node("span", meter.state, "badge bad");
      badge.dataset.linkState = "";
      head.append(badge, " ", node("strong", d.title), " ", node("small", d.message));
      const fix = node("p");
      const link = node("a", d.fix_text);
      link.href = d.fix_href;
      link.dataset.fix = "";
      fix.append(link);
      if (d.guide_section) {
        fix.append(" ", node("small", "\u00b7 troubleshooting guide: \u201c" + d.guide_section + "\u201d (" + guide + ")"));
      }
      box.append(head, node("p", d.advice), fix);
      parts.push(box);
    }
    if (meter.clock_warning) {
      const clock = node("p", meter.clock_warning, "warning");
      clock.dataset.clockWarning = "";
      parts.push(clock);
    }
    if (meter.readings_rejected) {
      let text = fmt.number(meter.readings_rejected) + " readings rejected";
      if (meter.rejected_in_a_row) text += " (" + fmt.number(meter.rejected_in_a_row) + " in a row)";
      if (meter.last_rejection) text += "; the latest: " + meter.last_rejection;
      const p = node("p", text, "rejections");
      p.dataset.rejections = "";
      parts.push(p);
    }
    alerts.replaceChildren.apply(alerts, parts);
  }

  function refreshStates() {
    fetch("/api/v1/meter", { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (meters) { meters.forEach(showState); })
      .catch(function () { /* the stream's status line already says the gateway is away */ })
      .finally(function () { setTimeout(refreshStates, STATE_EVERY_MS); });
  }

  const source = new EventSource("/api/v1/stream");
  source.addEventListener("open", function () { connected = true; });
  function tell(name, data) {  // dashboard-charts.js listens: the live chart, tiers and costs
    document.dispatchEvent(new CustomEvent("mepgate:" + name, { detail: data }));
  }

  source.addEventListener("reading", function (event) {
    const data = JSON.parse(event.data);
    tell("reading", data);
    const el = apply(data);
    if (!el) return;
    const [text, cls] = direction(data.net_power_w);
    const dir = el.querySelector("[data-direction]");
    dir.textContent = text;
    dir.className = "direction " + cls;
    const status = el.querySelector("[data-status]");
    status.dataset.at = data.at;
    showAge(status);
  });
  source.addEventListener("energy", function (event) {
    const data = JSON.parse(event.data);
    tell("energy", data);
    apply(data);
  });
  source.addEventListener("error", function () {
    connected = false;
    document.querySelectorAll("[data-status]").forEach(function (el) {
      if (el.dataset.at) showAge(el);
      else { el.textContent = "connection lost, reconnecting\u2026"; el.classList.add("stale"); }
    });
  });
  function ages() { document.querySelectorAll("[data-status]").forEach(showAge); }
  ages();
  setInterval(ages, 1000);
  setTimeout(refreshStates, STATE_EVERY_MS);
})();
