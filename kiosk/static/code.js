// The code page keeps its code fresh. Every refresh interval (and when the countdown ends) it
// fetches itself in the background and swaps in what the server now shows: the code signed
// afresh, or the code's new state (paid, cancelled, expired). The swap happens only once the new
// page and its QR image have both arrived, so on a weak or lost connection the code on screen
// stays there (still good for a few minutes), a line says so, and the next interval tries again.
// Without JavaScript the page reloads itself instead (a meta refresh inside <noscript>).
(function () {
  "use strict";
  var main = document.querySelector("main");
  var node = document.querySelector(".countdown");
  if (!main || !node) { return; }
  var refreshSeconds = parseInt(node.getAttribute("data-refresh-seconds"), 10) || 30;
  var left = parseInt(node.getAttribute("data-seconds-left"), 10);
  var sinceRefresh = 0;
  var busy = false;
  var timer;
  var fetches = Boolean(window.fetch && window.DOMParser && window.Promise);

  if (!fetches) {
    // An old browser: reload as the page does without JavaScript.
    window.setTimeout(function () { window.location.reload(); }, refreshSeconds * 1000);
  }

  function offline(shown) {
    var notice = main.querySelector(".code-offline");
    if (notice) { notice.hidden = !shown; }
  }

  function swapIn(fresh, image) {
    while (main.firstChild) { main.removeChild(main.firstChild); }
    for (var child = fresh.firstChild; child; child = child.nextSibling) {
      main.appendChild(document.importNode(child, true));
    }
    var slot = main.querySelector(".code-qr-slot");
    if (slot && image) { slot.parentNode.replaceChild(image, slot); }
    node = main.querySelector(".countdown");
    if (!node) {
      // The code is no longer open: its new state is on screen, and nothing is left to count.
      window.clearInterval(timer);
      return;
    }
    left = parseInt(node.getAttribute("data-seconds-left"), 10);
  }

  function refresh() {
    busy = true;
    window.fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) {
          // Signed out meanwhile: go where the server sends the visitor.
          window.location.assign(response.url);
          return null;
        }
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return null; }
        var fresh = new window.DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (!fresh) { throw new Error("no page"); }
        var image = fresh.querySelector("img.code-qr");
        if (!image) { return { fresh: fresh, image: null }; }
        // The new QR image is loaded in this page before anything is swapped: a half-loaded
        // page must not hide the code. The loaded image itself goes in, so it is not fetched
        // again; in the new page a placeholder holds its place.
        return new Promise(function (resolve, reject) {
          var loaded = new window.Image();
          for (var i = 0; i < image.attributes.length; i += 1) {
            var attribute = image.attributes[i];
            if (attribute.name !== "src") { loaded.setAttribute(attribute.name, attribute.value); }
          }
          loaded.onload = function () {
            var slot = fresh.ownerDocument.createElement("span");
            slot.className = "code-qr-slot";
            image.parentNode.replaceChild(slot, image);
            resolve({ fresh: fresh, image: loaded });
          };
          loaded.onerror = function () { reject(new Error("no image")); };
          loaded.src = image.getAttribute("src");
        });
      })
      .then(function (page) {
        if (page) { swapIn(page.fresh, page.image); }
        offline(false);
      })
      .catch(function () { offline(true); })
      .then(function () {
        busy = false;
        sinceRefresh = 0;
      });
  }

  function tick() {
    left = Math.max(0, left - 1);
    var minutes = Math.floor(left / 60), seconds = left % 60;
    node.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    sinceRefresh += 1;
    if (fetches && !busy && (sinceRefresh >= refreshSeconds || left === 0)) {
      refresh();
    }
  }

  left += 1;  // the first tick shows the time left now
  tick();
  sinceRefresh = 0;
  timer = window.setInterval(tick, 1000);
}());
