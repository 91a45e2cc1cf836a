// Loaded as a classic, blocking script from <head>, so data-theme on <html> is set before the
// first paint: the remembered choice, else the system's. The stylesheet reads only data-theme
// (one dark palette, not a second copy under a media query). Without a remembered choice the
// page follows the system's changes; the toggle (app.js) remembers a choice, or forgets it
// when it goes back to the system's.
(function () {
  var root = document.documentElement;
  var media = matchMedia("(prefers-color-scheme: dark)");
  function apply() {
    var theme = null;
    try {
      theme = localStorage.getItem("motia-state.theme");
    } catch (e) {
      /* storage refused (private mode, a policy): follow the system */
    }
    root.dataset.theme = theme === "light" || theme === "dark" ? theme : media.matches ? "dark" : "light";
  }
  apply();
  media.addEventListener("change", apply);
})();
