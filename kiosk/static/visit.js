// Door-to-door visits on a phone that loses its network (templates/commune/households/visit.html).
//
// - Draft: every change to the visit form is kept in localStorage, so a reload (or a closed tab)
//   does not lose it; it is restored when the household's visit page opens again.
// - Outbox: the form is sent with fetch. When that fails (no network, server down, expired
//   page), the visit is kept in an outbox in localStorage and sent again, oldest first, when the
//   network comes back ("online"), when a page with the outbox panel opens, every minute while
//   one is open, and on "Gửi lại". The visit's id travels with it, so the server stores it once
//   however often it arrives.
// - Without JavaScript the form is a plain POST, and none of this runs.
(function () {
  "use strict";

  var OUTBOX_KEY = "softatm.visit-outbox";
  var REFUSED_KEY = "softatm.visit-refused";
  var REFUSED_KEPT_MAX = 20;
  var RESEND_INTERVAL_MS = 60 * 1000;
  var sending = false;

  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (error) {
      return fallback;
    }
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch (error) {
      return false;
    }
  }

  function forget(key) {
    try {
      window.localStorage.removeItem(key);
    } catch (error) {
      // Storage refused (private mode): nothing was kept either.
    }
  }

  // A random (version 4) UUID; crypto.randomUUID needs HTTPS, getRandomValues does not.
  function newVisitId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (byte) {
      return (byte + 0x100).toString(16).slice(1);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20),
      hex.slice(20)].join("-");
  }

  function fieldsOf(form) {
    var fields = [];
    new window.FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "csrf_token") {
        fields.push([name, value]);
      }
    });
    return fields;
  }

  function valueOf(fields, name) {
    for (var i = 0; i < fields.length; i += 1) {
      if (fields[i][0] === name) { return fields[i][1]; }
    }
    return "";
  }

  // The token of the page open now: one saved with an old visit may have expired.
  function csrfToken() {
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  // Send one visit. Resolves to {kind: "done" | "refused" | "retry", answer, why}.
  function send(item, live) {
    var body = new window.URLSearchParams();
    item.fields.forEach(function (pair) { body.append(pair[0], pair[1]); });
    var token = csrfToken();
    body.append("csrf_token", token);
    var headers = { "Accept": "application/json", "X-CSRFToken": token };
    if (live) { headers["X-Visit-Live"] = "1"; }
    return window.fetch(item.url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      redirect: "manual",
      headers: headers
    }).then(function (response) {
      // A redirect here is the sign-in page: keep the visit until the member signs in again.
      if (response.type === "opaqueredirect") { return { kind: "retry", why: "expired" }; }
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        if (response.status === 400) { return { kind: "retry", why: "expired" }; }
        if (response.status >= 500) { return { kind: "retry", why: "server" }; }
        return { kind: "refused", answer: { errors: { form: String(response.status) } } };
      }
      return response.json().then(function (answer) {
        if (response.ok) { return { kind: "done", answer: answer }; }
        if (response.status === 409 || response.status === 422) {
          return { kind: "refused", answer: answer };
        }
        return { kind: "retry", why: "server" };
      });
    }, function () {
      return { kind: "retry", why: "offline" };
    });
  }

  // --- The outbox panel ------------------------------------------------------------------------

  var panel = document.querySelector(".visit-outbox");

  function say(text) {
    if (!panel) { return; }
    panel.querySelector(".outbox-status").textContent = text;
  }

  function showPanel() {
    if (!panel) { return; }
    var outbox = load(OUTBOX_KEY, []);
    var refused = load(REFUSED_KEY, []);
    var list = panel.querySelector(".outbox-refused");
    list.textContent = "";
    refused.forEach(function (entry) {
      var item = document.createElement("li");
      item.textContent = panel.dataset.refused + " " + entry.label + " — " + entry.message;
      list.appendChild(item);
    });
    panel.querySelector(".outbox-dismiss").hidden = refused.length === 0;
    panel.querySelector(".outbox-resend").hidden = outbox.length === 0;
    if (outbox.length > 0) {
      say(panel.dataset.waiting.replace("{count}", String(outbox.length)));
    }
    panel.hidden = outbox.length === 0 && refused.length === 0 &&
      !panel.querySelector(".outbox-status").textContent;
  }

  function messageOf(answer) {
    var errors = (answer && answer.errors) || {};
    var messages = Object.keys(errors).map(function (key) { return errors[key]; });
    return messages.join(" ");
  }

  function keepRefused(item, answer) {
    var refused = load(REFUSED_KEY, []);
    refused.push({ label: item.label, message: messageOf(answer) });
    store(REFUSED_KEY, refused.slice(-REFUSED_KEPT_MAX));
  }

  function removeFromOutbox(id) {
    store(OUTBOX_KEY, load(OUTBOX_KEY, []).filter(function (item) { return item.id !== id; }));
  }

  // Send the outbox, oldest first, one at a time; stop at the first visit that must wait.
  function flush() {
    if (sending) { return; }
    var outbox = load(OUTBOX_KEY, []);
    if (outbox.length === 0) { showPanel(); return; }
    sending = true;
    say(panel ? panel.dataset.sending : "");
    var item = outbox[0];
    send(item, false).then(function (result) {
      sending = false;
      if (result.kind === "retry") {
        showPanel();
        if (result.why === "expired" && panel) { say(panel.dataset.expired); }
        return;
      }
      if (result.kind === "refused") { keepRefused(item, result.answer); }
      removeFromOutbox(item.id);
      if (load(OUTBOX_KEY, []).length === 0) {
        say(panel ? panel.dataset.sent : "");
        showPanel();
        return;
      }
      flush();
    });
  }

  if (panel) {
    panel.querySelector(".outbox-resend").addEventListener("click", flush);
    panel.querySelector(".outbox-dismiss").addEventListener("click", function () {
      forget(REFUSED_KEY);
      say("");
      showPanel();
    });
    showPanel();
    window.addEventListener("online", flush);
    window.setInterval(flush, RESEND_INTERVAL_MS);
    flush();
  }

  // --- The visit form: draft and sending -------------------------------------------------------

  var form = document.querySelector("form.visit-form");
  if (!form) { return; }
  var draftKey = form.dataset.draftKey;
  var idField = form.elements.namedItem("visit_id");
  var heading = document.querySelector("h1");
  var label = heading ? heading.textContent : "";

  function queued(id) {
    return load(OUTBOX_KEY, []).some(function (item) { return item.id === id; });
  }

  function saveDraft() {
    store(draftKey, { fields: fieldsOf(form), savedAt: new Date().toISOString() });
  }

  function restoreDraft() {
    var draft = load(draftKey, null);
    if (!draft || !draft.fields) { return false; }
    draft.fields.forEach(function (pair) {
      // The draft was never stored: it goes out under a new id (a visit already sent keeps
      // its id in the outbox, never in the draft).
      if (pair[0] === "visit_id") { return; }
      var element = form.elements.namedItem(pair[0]);
      if (element && "value" in element) { element.value = pair[1]; }
    });
    return true;
  }

  function startNewVisit() {
    forget(draftKey);
    form.reset();
    idField.value = newVisitId();
  }

  if (restoreDraft()) {
    idField.value = newVisitId();
    if (panel) { say(panel.dataset.draftRestored); panel.hidden = false; }
  }
  // A page shown again from the browser's cache may carry the id of a visit already kept.
  if (queued(idField.value)) { idField.value = newVisitId(); }
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var fields = fieldsOf(form);
    var item = {
      id: valueOf(fields, "visit_id"),
      url: form.action,
      label: label,
      fields: fields,
      savedAt: new Date().toISOString()
    };
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    send(item, true).then(function (result) {
      if (button) { button.disabled = false; }
      if (result.kind === "done") {
        forget(draftKey);
        window.location.assign(result.answer.next);
        return;
      }
      if (result.kind === "refused") {
        // The server's own page says what to fix, field by field: send the form plainly.
        form.submit();
        return;
      }
      var outbox = load(OUTBOX_KEY, []);
      if (!queued(item.id)) { outbox.push(item); }
      if (!store(OUTBOX_KEY, outbox)) { return; }  // storage full: the draft stays instead
      startNewVisit();
      showPanel();
      if (result.why === "expired" && panel) { say(panel.dataset.expired); }
      window.scrollTo(0, 0);
    });
  });
}());
