// Polls the order status JSON while an asynchronous payment settles, then reloads.
(function () {
  var section = document.querySelector("[data-poll]");
  if (!section) return;
  var url = section.getAttribute("data-poll");
  var tries = 0;
  function poll() {
    tries += 1;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.state !== "processing" && data.state !== "pending") {
          window.location.reload();
        } else if (tries < 60) {
          setTimeout(poll, Math.min(2000 * tries, 10000));
        }
      })
      .catch(function () { if (tries < 60) setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
