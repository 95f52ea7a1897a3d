// Site-wide behaviour; the Content-Security-Policy allows no inline script, so it lives here.
(function () {
  // A flash message is in the page before it loads, so a live region alone is not announced
  // (e.g. "Mark complete" redirects to the next lesson). Moving focus to it reads it out, and
  // the next Tab continues from there.
  var message = document.querySelector("[data-focus-on-load]");
  if (message) message.focus();

  // The course outline follows the lesson. On small screens it starts collapsed, so the page
  // ends soon after the lesson; it is open without JavaScript and on wide screens.
  var outline = document.querySelector("details[data-collapse-narrow]");
  if (outline && window.matchMedia("(max-width: 59.99rem)").matches) {
    outline.open = false;
  }
})();
