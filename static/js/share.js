// The share button of a question page. Without JavaScript it is a plain link to
// the page; here it opens the system's share sheet (the Web Share API) where the
// browser has one, and otherwise copies the link to the clipboard.
(function () {
  "use strict";
  var button = document.querySelector("[data-share]");
  if (!button) {
    return;
  }
  var status = document.getElementById(button.getAttribute("aria-describedby"));
  var url = button.getAttribute("href");

  function say(text) {
    status.textContent = text;
  }

  function copy() {
    if (!navigator.clipboard || !navigator.clipboard.writeText) {
      say(button.dataset.copyFailed + " " + url);
      return;
    }
    navigator.clipboard.writeText(url).then(
      function () { say(button.dataset.copied); },
      function () { say(button.dataset.copyFailed + " " + url); }
    );
  }

  button.addEventListener("click", function (event) {
    event.preventDefault();
    var data = { title: button.dataset.title, url: url };
    if (navigator.share && (!navigator.canShare || navigator.canShare(data))) {
      navigator.share(data).catch(function (error) {
        // The reader closed the share sheet: nothing to do.
        if (error && error.name !== "AbortError") {
          copy();
        }
      });
    } else {
      copy();
    }
  });
})();
