// Live QR scanning from a camera, shared by the market-stall pay page and the agent's counter.
// softatmCamera.start(section, detect, onText): opens the rear camera into the section's
// <video class="camera-view">, calls detect(video) → Promise<text or null> every intervalMs
// until it finds a code, then stops the camera and calls onText(text). The section's
// data-starting / data-aim / data-found / data-failed attributes are the (translated) messages
// shown in its .camera-status; its .camera-start button is disabled while the camera opens.
(function () {
  "use strict";

  function start(section, detect, onText, intervalMs) {
    var video = section.querySelector(".camera-view");
    var status = section.querySelector(".camera-status");
    var button = section.querySelector(".camera-start");
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
      detect(video).then(function (text) {
        if (text && !done) {
          done = true;
          stop();
          status.textContent = section.dataset.found;
          onText(text);
          return;
        }
        window.setTimeout(scan, intervalMs);
      }).catch(function () {
        window.setTimeout(scan, intervalMs);
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

  // A detector reading QR codes in the browser itself, where BarcodeDetector exists.
  function browserDetector() {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return function (video) {
      return detector.detect(video).then(function (codes) {
        var found = codes.find(function (code) { return code.rawValue; });
        return found ? found.rawValue : null;
      });
    };
  }

  // Resolves to whether this browser can read QR codes itself.
  function browserReadsQr() {
    if (!("BarcodeDetector" in window)) { return Promise.resolve(false); }
    if (!window.BarcodeDetector.getSupportedFormats) { return Promise.resolve(true); }
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      return formats.indexOf("qr_code") !== -1;
    }).catch(function () { return false; });
  }

  function cameraAvailable() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  window.softatmCamera = {
    start: start,
    browserDetector: browserDetector,
    browserReadsQr: browserReadsQr,
    cameraAvailable: cameraAvailable
  };
}());
