// Reports a lesson video's playback: the position to resume at and the furthest point
// watched, at most every 15 s while playing, on pause, and when the learner leaves the page.
// The furthest point grows only by playing across it, never by seeking past it; the server
// keeps the largest it was told. A local <video> (the offline demo) and Cloudflare Stream's
// player (its SDK mirrors the media element's API) are driven the same way.
(function () {
  "use strict";
  var EVERY = 15000;
  var SDK = "https://embed.cloudflarestream.com/embed/sdk.latest.js";

  function withStream(callback) {
    if (window.Stream) return callback(window.Stream);
    var script = document.querySelector('script[src="' + SDK + '"]');
    if (!script) {
      script = document.createElement("script");
      script.src = SDK;
      document.head.appendChild(script);
    }
    script.addEventListener("load", function () { callback(window.Stream); });
  }

  function watch(player, box) {
    var resume = parseFloat(box.getAttribute("data-resume")) || 0;
    var furthest = parseFloat(box.getAttribute("data-furthest")) || 0;
    var shown = box.querySelector("[data-video-percent]");
    var lastSent = 0, lastTime = 0, dirty = false, resumed = false;

    function send(leaving) {
      var duration = player.duration;
      if (!dirty || !(duration > 0) || !isFinite(duration)) return;
      dirty = false;
      lastSent = Date.now();
      var body = new URLSearchParams({
        video: box.getAttribute("data-video"),
        position: Math.min(player.currentTime, duration).toFixed(1),
        furthest: Math.min(furthest, duration).toFixed(1),
        duration: duration.toFixed(1)
      });
      fetch(box.getAttribute("data-url"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        keepalive: Boolean(leaving),
        headers: { "X-CSRFToken": box.getAttribute("data-csrf") }
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          if (shown) shown.textContent = data.percent;
          box.setAttribute("data-reported", String(data.percent));
          if (data.completed) box.setAttribute("data-completed", "1");
        })
        .catch(function () { dirty = true; });
    }

    function resumeOnce() {
      if (resumed || !(player.duration > 0)) return;
      resumed = true;
      if (resume > 0 && resume < player.duration - 1) player.currentTime = resume;
      lastTime = resume;
    }

    player.addEventListener("loadedmetadata", resumeOnce);
    if (player.readyState >= 1) resumeOnce();
    player.addEventListener("seeked", function () { lastTime = player.currentTime; });
    player.addEventListener("timeupdate", function () {
      var now = player.currentTime;
      // Between two updates (about four a second) playing moves on by a second or so, more
      // when sped up; a seek moves further.
      var step = 3 * Math.max(1, player.playbackRate || 1);
      if (lastTime <= furthest + 1 && now > furthest && now - lastTime < step) furthest = now;
      lastTime = now;
      dirty = true;
      if (Date.now() - lastSent >= EVERY) send(false);
    });
    player.addEventListener("pause", function () { send(false); });
    player.addEventListener("ended", function () { send(false); });
    window.addEventListener("pagehide", function () { send(true); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") send(true);
    });
  }

  function start() {
    document.querySelectorAll("[data-video-progress]").forEach(function (box) {
      if (box.getAttribute("data-bound")) return;
      box.setAttribute("data-bound", "1");
      var frame = box.parentElement.querySelector("video[data-video], iframe[data-video]");
      if (!frame) return;
      if (frame.tagName === "VIDEO") return watch(frame, box);
      withStream(function (Stream) { watch(Stream(frame), box); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
