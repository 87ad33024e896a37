// Market-stall pages, progressive enhancement only: every form works without this file.
// 1. Pay page: when the browser has BarcodeDetector (with QR support) and a camera, show the
//    camera section; a QR read from the video (camera.js) fills the hidden payload field and
//    submits it.
// 2. Confirm form: disable the button after the first tap (the server pays once anyway).
// 3. Print page: a button that opens the print dialog.
// Messages come from data attributes of the page, so they are translated with the page.
(function () {
  "use strict";

  var SCAN_INTERVAL_MS = 250;

  function setUpCamera() {
    var camera = window.softatmCamera;
    var section = document.querySelector("section.camera");
    if (!section || !camera || !camera.cameraAvailable()) { return; }
    camera.browserReadsQr().then(function (readsQr) {
      // Without QR support in the browser the section stays hidden: photo and stall code remain.
      if (!readsQr) { return; }
      section.hidden = false;
      section.querySelector(".camera-start").addEventListener("click", function () {
        camera.start(section, camera.browserDetector(), function (text) {
          section.querySelector(".camera-payload").value = text;
          section.querySelector(".camera-form").submit();
        }, SCAN_INTERVAL_MS);
      });
    });
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
