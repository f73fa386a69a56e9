// Copy buttons for the hosted pages, loaded only by pages that ask for it.
//
// <button type="button" data-copy-target="ID" hidden>Copy</button> copies the
// text of each <code> inside the element with id ID, one per line. The
// button ships hidden: it is shown only when the clipboard can be written,
// so without JavaScript the page still offers the download and the codes.
(function () {
  "use strict";
  if (!window.isSecureContext || !navigator.clipboard || !navigator.clipboard.writeText) {
    return;
  }
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    button.addEventListener("click", function () {
      var codes = target.querySelectorAll("code");
      var lines = codes.length
        ? Array.prototype.map.call(codes, function (c) { return c.textContent.trim(); })
        : [target.textContent.trim()];
      navigator.clipboard.writeText(lines.join("\n") + "\n").then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Copy failed: select the codes instead";
      });
    });
    button.hidden = false;
  });
})();
