// Console: while a long read runs, ask /api/v1/console/jobs/ID every second and show how far
// it is; when it ends, load the page again, which shows the reply (or why it stopped).
// The cancel button is an ordinary form (it works without this script too).
"use strict";
(function () {
  const box = document.getElementById("console-job");
  if (!box || box.dataset.state !== "running") return;
  const fmt = window.mepgateFormat;
  const id = box.dataset.job;
  const bar = document.getElementById("console-bar");
  const line = document.getElementById("console-progress");
  const EVERY_MS = 1000;

  function show(p) {
    if (p.total_bytes) { bar.max = p.total_bytes; bar.value = p.done_bytes; }
    let text = fmt.number(p.done_bytes) + (p.total_bytes ? " of " + fmt.number(p.total_bytes) : "") +
      " bytes \u00b7 " + p.pieces + " pieces \u00b7 " + fmt.duration(p.elapsed_s);
    if (p.remaining_s !== null) text += " \u00b7 about " + fmt.duration(p.remaining_s) + " left";
    line.textContent = text;
  }

  function tick() {
    fetch("/api/v1/console/jobs/" + encodeURIComponent(id), { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (p) {
        show(p);
        if (p.state === "running") setTimeout(tick, EVERY_MS);
        else window.location.replace("/console?job=" + encodeURIComponent(id));
      })
      .catch(function (error) {
        line.textContent = "lost track of the request (" + error.message + "): reload the page";
      });
  }
  setTimeout(tick, EVERY_MS);
})();
