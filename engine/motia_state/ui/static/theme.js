// Loaded as a classic, blocking script from <head>: the remembered theme is applied before
// the first paint. Without a remembered choice the page follows prefers-color-scheme (CSS).
(function () {
  try {
    var theme = localStorage.getItem("motia-state.theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) {
    /* storage refused (private mode, a policy): follow the system */
  }
})();
