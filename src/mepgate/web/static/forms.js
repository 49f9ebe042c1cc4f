// Behaviour the pages' forms share.  In a file, not inline: the Content-Security-Policy runs
// scripts from this origin's files only, so an injected inline script cannot run.
"use strict";

// <select data-autosubmit>: choosing an option submits its form (the history's meter choice).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}
