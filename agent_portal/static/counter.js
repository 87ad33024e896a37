// Counter pages, progressive enhancement only: every form works without this file.
// 1. Camera: read QR codes from the live video. BarcodeDetector decodes in the browser where it
//    exists (Android, ChromeOS, macOS); elsewhere a frame is sent to the server twice a second.
//    A code read fills the scan field and submits it, as a USB scanner would.
// 2. Countdown to a code's expiry. 3. Print button on receipts. 4. One submit per pay form.
// Messages come from data attributes of the page, so they are translated with the page.
(function () {
  "use strict";

  var SCAN_INTERVAL_MS = 500;
  var FRAME_WIDTH_PX = 720;

  function serverDetector(section) {
    var canvas = document.createElement("canvas");
    return function (video) {
      var scale = Math.min(1, FRAME_WIDTH_PX / (video.videoWidth || FRAME_WIDTH_PX));
      canvas.width = Math.round((video.videoWidth || FRAME_WIDTH_PX) * scale);
      canvas.height = Math.round((video.videoHeight || FRAME_WIDTH_PX * 0.75) * scale);
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(resolve, "image/jpeg", 0.85);
      }).then(function (blob) {
        return fetch(section.dataset.decodeUrl, {
          method: "POST",
          body: blob,
          credentials: "same-origin",
          headers: { "X-CSRFToken": section.dataset.csrf, "Content-Type": "image/jpeg" }
        });
      }).then(function (response) {
        return response.ok ? response.json() : { text: null };
      }).then(function (answer) { return answer.text; });
    };
  }

  function setUpCamera() {
    var camera = window.softatmCamera;
    var section = document.querySelector("section.camera");
    if (!section || !camera || !camera.cameraAvailable() || !window.fetch) { return; }
    camera.browserReadsQr().then(function (readsQr) {
      var detect = readsQr ? camera.browserDetector() : serverDetector(section);
      section.hidden = false;
      section.querySelector(".camera-start").addEventListener("click", function () {
        camera.start(section, detect, function (text) {
          var form = document.querySelector(".scan-form");
          form.querySelector(".scan-field").value = text;
          form.querySelector(".scan-source").value = "camera";
          form.submit();
        }, SCAN_INTERVAL_MS);
      });
    });
  }

  function setUpCountdowns() {
    document.querySelectorAll(".countdown[data-seconds-left]").forEach(function (element) {
      var left = parseInt(element.dataset.secondsLeft, 10);
      function show() {
        var minutes = Math.floor(Math.max(left, 0) / 60);
        var seconds = Math.max(left, 0) % 60;
        element.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
        if (left <= 60) { element.classList.add("countdown-ending"); }
        left -= 1;
      }
      show();
      window.setInterval(show, 1000);
    });
  }

  function setUpPrint() {
    document.querySelectorAll(".print-button").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  function setUpSingleSubmit() {
    document.querySelectorAll(".pay-form").forEach(function (form) {
      form.addEventListener("submit", function () {
        window.setTimeout(function () {
          form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
    });
  }

  setUpCamera();
  setUpCountdowns();
  setUpPrint();
  setUpSingleSubmit();
}());
