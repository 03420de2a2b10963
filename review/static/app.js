// tiswatch review app: keyboard triage, bulk selection, CSRF header for htmx. No inline script (CSP).
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf") || "";
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (csrf) e.detail.headers["X-CSRF-Token"] = csrf;
  });
  // a failed htmx decision (409) shows its message instead of being dropped
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr.status === 409) { e.detail.shouldSwap = false; flash(e.detail.xhr.responseText); }
  });
  function flash(html) {
    var main = document.getElementById("main"), p = document.createElement("div");
    p.innerHTML = html; // server-rendered, escaped
    main.insertBefore(p, main.firstChild);
    setTimeout(function () { p.remove(); }, 5000);
  }

  // "select all" beside a case form: ticks the list's boxes that belong to that form
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      var f = box.getAttribute("data-select-all");
      document.querySelectorAll('input[name="key"][form="' + f + '"]').forEach(function (c) { c.checked = box.checked; });
    });
  });

  var all = document.getElementById("select-all");
  if (all) all.addEventListener("change", function () {
    document.querySelectorAll('#queue input[name="key"]').forEach(function (c) { c.checked = all.checked; });
  });

  var table = document.getElementById("queue");
  if (!table) return;
  var cur = -1;
  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tbody tr.row")); }
  function setCur(i) {
    var rs = rows();
    if (!rs.length) return;
    i = Math.max(0, Math.min(rs.length - 1, i));
    rs.forEach(function (r) { r.classList.remove("current"); r.removeAttribute("aria-selected"); });
    cur = i;
    rs[i].classList.add("current");
    rs[i].setAttribute("aria-selected", "true");
    rs[i].scrollIntoView({ block: "nearest" });
  }
  function row() { var rs = rows(); return cur >= 0 ? rs[cur] : null; }
  function act(action, field, value) {
    var r = row(); if (!r) return;
    var f = r.querySelector("form.rowform"); if (!f) return;
    if (field) { var s = f.querySelector('select[name="' + field + '"]'); if (s) s.value = value; }
    var b = f.querySelector('button[value="' + action + '"]');
    if (b) { b.dataset.asked = "1"; b.click(); }
  }
  // a row's Dismiss / Escalate button asks for the reason or target first (the selects are hidden)
  table.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.b-dismiss, button.b-escalate");
    if (!b || b.dataset.asked) return;
    var tr = b.closest("tr.row"), rs = rows();
    e.preventDefault();
    setCur(rs.indexOf(tr));
    if (b.classList.contains("b-dismiss")) ask("dismiss-dialog", function (v) { act("dismiss", "reason", v); });
    else ask("escalate-dialog", function (v) { act("escalate", "target", v); });
  });
  // after a row is replaced by htmx, keep the cursor and move on to the next row
  document.body.addEventListener("htmx:afterSwap", function () { if (cur >= 0) setCur(cur + 1); });

  function ask(id, then) {
    var d = document.getElementById(id); if (!d) return;
    d.returnValue = "";
    d.showModal();
    var first = d.querySelector("input:checked") || d.querySelector("input");
    if (first) first.focus();
    d.onkeydown = function (e) {
      var n = parseInt(e.key, 10);
      var opts = d.querySelectorAll('input[type="radio"]');
      if (n >= 1 && n <= opts.length) { opts[n - 1].checked = true; opts[n - 1].focus(); e.preventDefault(); }
      if (e.key === "Enter") { e.preventDefault(); d.close("ok"); }
    };
    d.onclose = function () {
      if (d.returnValue === "ok") { var c = d.querySelector("input:checked"); if (c) then(c.value); }
      table.focus();
    };
  }

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") && t.type !== "checkbox") return;
    if (document.querySelector("dialog[open]")) return;
    switch (e.key) {
      case "j": setCur(cur + 1); break;
      case "k": setCur(cur < 0 ? 0 : cur - 1); break;
      case "Enter": case "o": if (row()) window.location = row().getAttribute("data-href"); else return; break;
      case "x": if (row()) { var c = row().querySelector('input[name="key"]'); if (c) c.checked = !c.checked; } break;
      case "c": act("confirm"); break;
      case "d": ask("dismiss-dialog", function (v) { act("dismiss", "reason", v); }); break;
      case "e": ask("escalate-dialog", function (v) { act("escalate", "target", v); }); break;
      default: return;
    }
    e.preventDefault();
  });
  table.setAttribute("tabindex", "-1");
})();
