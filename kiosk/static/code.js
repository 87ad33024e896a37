// Counts down to the code's expiry. Without JavaScript the page still shows the expiry time and
// reloads itself (meta refresh), which also re-signs the code shown.
(function () {
  "use strict";
  var node = document.querySelector(".countdown");
  if (!node) { return; }
  var left = parseInt(node.getAttribute("data-seconds-left"), 10);
  function show() {
    if (left <= 0) { window.location.reload(); return; }
    var minutes = Math.floor(left / 60), seconds = left % 60;
    node.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    left -= 1;
  }
  show();
  window.setInterval(show, 1000);
}());
