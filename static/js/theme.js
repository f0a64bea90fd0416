// Loaded synchronously in <head> so the saved theme applies before the first paint.
(function () {
  try {
    var saved = localStorage.getItem("theme");
    if (saved === "light" || saved === "dark") {
      document.documentElement.setAttribute("data-theme", saved);
    }
  } catch (e) {
    // Storage can be blocked; the system preference (CSS media query) applies then.
  }
})();
