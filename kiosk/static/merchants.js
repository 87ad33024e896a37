// Market-stall pages, progressive enhancement only: every form works without this file.
// 1. Pay page: when the browser has BarcodeDetector (with QR support) and a camera, show the
//    camera section; a QR read from the video fills the hidden payload field and submits it.
// 2. Confirm form: disable the button after the first tap (the server pays once anyway).
// 3. Print page: a button that opens the print dialog.
// Messages come from data attributes of the page, so they are translated with the page.
(function () {
  "use strict";

  var SCAN_INTERVAL_MS = 250;

  function startCamera(section) {
    var video = section.querySelector(".camera-view");
    var status = section.querySelector(".camera-status");
    var button = section.querySelector(".camera-start");
    var form = section.querySelector(".camera-form");
    var field = section.querySelector(".camera-payload");
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    var stream = null;
    var done = false;

    function stop() {
      if (stream) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
      }
    }

    function scan() {
      if (done) { return; }
      detector.detect(video).then(function (codes) {
        var found = codes.find(function (code) { return code.rawValue; });
        if (found) {
          done = true;
          stop();
          status.textContent = section.dataset.found;
          field.value = found.rawValue;
          form.submit();
          return;
        }
        window.setTimeout(scan, SCAN_INTERVAL_MS);
      }).catch(function () {
        window.setTimeout(scan, SCAN_INTERVAL_MS);
      });
    }

    button.disabled = true;
    status.textContent = section.dataset.starting;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        return video.play();
      })
      .then(function () {
        button.hidden = true;
        status.textContent = section.dataset.aim;
        scan();
      })
      .catch(function () {
        stop();
        button.disabled = false;
        status.textContent = section.dataset.failed;
      });
    window.addEventListener("pagehide", stop);
  }

  function setUpCamera() {
    var section = document.querySelector("section.camera");
    if (!section || !("BarcodeDetector" in window) || !navigator.mediaDevices ||
        !navigator.mediaDevices.getUserMedia) {
      return;
    }
    var formats = window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats()
      : Promise.resolve(["qr_code"]);
    formats.then(function (supported) {
      if (supported.indexOf("qr_code") === -1) { return; }
      section.hidden = false;
      section.querySelector(".camera-start").addEventListener("click", function () {
        startCamera(section);
      });
    }).catch(function () { /* No QR support: the section stays hidden. */ });
  }

  function setUpSubmitOnce() {
    var form = document.querySelector(".pay-form");
    if (!form) { return; }
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      // After this event, so that the button's own submission still goes through.
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  }

  function setUpPrint() {
    var button = document.querySelector(".print-button");
    if (!button) { return; }
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  }

  setUpCamera();
  setUpSubmitOnce();
  setUpPrint();
}());
