// Copy buttons. Progressive enhancement: the buttons are hidden in the
// HTML and shown here, so without JavaScript no button does nothing.
(function () {
  "use strict";
  if (!navigator.clipboard && !document.queryCommandSupported) return;

  function textOf(btn) {
    if (btn.dataset.copy !== undefined) return btn.dataset.copy;
    var el = document.getElementById(btn.dataset.copyTarget);
    return el ? el.textContent : "";
  }

  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.className = "offscreen";
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  var live = document.createElement("div");
  live.setAttribute("role", "status");
  live.setAttribute("aria-live", "polite");
  live.className = "sr-only";
  document.body.appendChild(live);

  document.querySelectorAll("[data-copy],[data-copy-target]").forEach(function (btn) {
    btn.hidden = false;
    var label = btn.textContent;
    btn.addEventListener("click", function () {
      copy(textOf(btn)).then(function () {
        btn.textContent = "Copied";
        btn.classList.add("copied");
        live.textContent = "Copied to the clipboard";
      }, function () {
        btn.textContent = "Press Ctrl+C";
        live.textContent = "Copying failed: select the text and copy it";
      }).then(function () {
        setTimeout(function () {
          btn.textContent = label;
          btn.classList.remove("copied");
        }, 1800);
      });
    });
  });
})();
