// Amanat HQ review console: the only script (CSP script-src 'self'; no inline script).
// Asks before an audited action; the server enforces everything, this is a courtesy.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
// The case list's filter: hides rows whose code does not contain what is typed. In the page only,
// so a searched code never appears in an address, a log or the history.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("filter");
  if (!f) {
    return;
  }
  f.addEventListener("input", function () {
    var q = f.value.trim().toUpperCase();
    document.querySelectorAll("#cases tbody tr").forEach(function (tr) {
      var code = tr.getAttribute("data-code") || "";
      tr.hidden = q !== "" && code.indexOf(q) < 0;
    });
  });
});
