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

// Local times: the server writes UTC; show the reader's own time and keep
// UTC in the tooltip.
(function () {
  "use strict";
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  } catch (e) { return; }
  document.querySelectorAll("time.local[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) el.textContent = fmt.format(d);
  });
})();

// The paste box of "Link with ChatGPT" says what it got while typing. The
// server checks again; this only explains early.
(function () {
  "use strict";
  var input = document.getElementById("callback");
  var hint = document.getElementById("callback-hint");
  if (!input || !hint) return;
  var state = input.dataset.state || "";
  var host = (input.dataset.host || "").toLowerCase();
  var initial = hint.innerHTML;

  function show(kind, text) {
    hint.className = "hint" + (kind ? " " + kind : "");
    hint.textContent = text;
  }

  function check() {
    var v = input.value.trim().replace(/^["'<`]+|["'>`]+$/g, "");
    if (v === "") { hint.className = "hint"; hint.innerHTML = initial; return; }
    if (!/[?=&\/:#]/.test(v)) {
      show("ok", "Got just the code: that works too. Press Finish linking.");
      return;
    }
    var q = v;
    if (v.indexOf("://") > 0) {
      var u;
      try { u = new URL(v); } catch (e) { show("bad", "This does not look like an address. Copy the whole address from the address bar."); return; }
      if (host && u.host.toLowerCase() !== host) {
        show("bad", "This address is from another site (" + u.host + "). Copy the address of the error page; it starts with http://" + host + "/.");
        return;
      }
      q = u.search || u.hash;
    } else if (v.indexOf("?") >= 0) {
      q = v.slice(v.indexOf("?"));
    }
    var p = new URLSearchParams(q.replace(/^[?#&]+/, ""));
    var err = p.get("error");
    if (err) {
      var desc = p.get("error_description") || "";
      if (/missing_codex_entitlement/.test(err + desc)) {
        show("bad", "ChatGPT says Codex is not enabled for your workspace. Ask your workspace admin to turn it on, or use a personal account.");
      } else if (err === "access_denied") {
        show("bad", "The sign-in was cancelled or refused on ChatGPT's page. Start again and press Continue there.");
      } else {
        show("bad", "ChatGPT reported a problem (" + err + "). Start the sign-in again.");
      }
      return;
    }
    if (!p.get("code")) { show("bad", "No sign-in code in this yet. Copy the whole address, including everything after the ?."); return; }
    if (!p.get("state")) { show("bad", "Part of the address is missing. Copy the whole address, not only a part."); return; }
    if (state && p.get("state") !== state) {
      show("bad", "This address belongs to a different sign-in attempt (an older tab?). Use the tab the button above opened.");
      return;
    }
    show("ok", "Looks right: found the sign-in code. Press Finish linking.");
  }
  input.addEventListener("input", check);
  if (input.value) check();
})();
