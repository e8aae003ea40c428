// Amanat HQ review console: the only script (CSP script-src 'self'; no inline script).
// Asks before an audited action; the server enforces everything, this is a courtesy.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
