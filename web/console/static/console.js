/* Pingan duty console, hand-written, no dependencies (a duty room may be cut off from the internet).
 * - countdowns to the next escalation, every second;
 * - the live board: server-sent events say what changed, the board then fetches its rows (rendered on the server
 *   for this person) and swaps them in;
 * - a grade I or II arrival alerts, visibly and with a generated beep (WebAudio, no sound file), until someone
 *   opens the incident;
 * - forms that ask for a confirmation (close, regrade, shift handover). */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-due")) - now) / 1000);
      var sign = left < 0 ? "-" : "";
      left = Math.abs(left);
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = sign + (h ? h + ":" + pad(m) : m) + ":" + pad(s);
      el.classList.toggle("due", sign === "-");
    });
  }

  // --- sound: a short two-tone beep made on the spot ---------------------------------------------------------
  var audio = null;
  function unlockAudio() {
    try {
      if (!audio) { audio = new (window.AudioContext || window.webkitAudioContext)(); }
      if (audio.state === "suspended") { audio.resume(); }
    } catch (e) { audio = null; }
  }
  function beep() {
    if (!audio || audio.state !== "running") { return; }
    [880, 660].forEach(function (freq, i) {
      var osc = audio.createOscillator(), gain = audio.createGain(), t0 = audio.currentTime + i * 0.22;
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0);
      osc.stop(t0 + 0.21);
    });
  }

  // --- the board ---------------------------------------------------------------------------------------------
  var baseTitle = document.title, beeping = null;
  function checkAlert() {
    var banner = document.getElementById("alert-banner");
    if (!banner) { return; }
    var alerting = document.querySelectorAll("#board-rows tr[data-alert]").length > 0;
    banner.hidden = !alerting;
    document.body.classList.toggle("alerting", alerting);
    document.title = alerting ? "⚠ " + baseTitle : baseTitle;
    if (alerting && !beeping) {
      beep();
      beeping = setInterval(beep, 2000);
    } else if (!alerting && beeping) {
      clearInterval(beeping);
      beeping = null;
    }
  }

  function liveBoard(section) {
    var rowsUrl = section.getAttribute("data-rows"), status = document.getElementById("live-status");
    var body = document.getElementById("board-rows"), loading = false, again = false;
    function setStatus(on) {
      if (!status) { return; }
      status.textContent = status.getAttribute(on ? "data-on" : "data-off");
      status.classList.toggle("on", on);
    }
    function reload() {
      if (loading) { again = true; return; }
      loading = true;
      fetch(rowsUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
        .then(function (html) { body.innerHTML = html; tick(); checkAlert(); })
        .catch(function () { setStatus(false); })
        .then(function () { loading = false; if (again) { again = false; reload(); } });
    }
    var source = new EventSource(section.getAttribute("data-live"));
    source.addEventListener("hello", function () { setStatus(true); reload(); });
    source.addEventListener("update", function () { reload(); });
    source.onerror = function () { setStatus(false); };
    window.pinganBoard = { reload: reload };
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    var section = document.querySelector("section.board[data-live]");
    if (section) { liveBoard(section); checkAlert(); }
    var soundButton = document.getElementById("alert-sound");
    if (soundButton) { soundButton.addEventListener("click", function () { unlockAudio(); beep(); }); }
    // Browsers start audio only after a gesture: the first click or key anywhere enables the alert's sound.
    document.addEventListener("click", unlockAudio, { once: true });
    document.addEventListener("keydown", unlockAudio, { once: true });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  });
})();
