(function () {
  var box = document.getElementById("filter");
  if (!box) { document.documentElement.setAttribute("data-ready", "1"); return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.kept"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("details.reason"));
  var shown = document.getElementById("kept-shown");
  function apply(query) {
    var q = query.trim().toLowerCase(), n = 0;
    rows.forEach(function (row) {
      var hit = q === "" || row.getAttribute("data-q").indexOf(q) >= 0;
      row.hidden = !hit;
      if (hit) { n++; }
    });
    groups.forEach(function (group) {
      var left = group.querySelectorAll("tr.kept:not([hidden])").length;
      group.hidden = left === 0;
      group.open = q !== "" && left > 0;
      group.querySelector(".n").textContent = left;
    });
    shown.textContent = n;
  }
  function fromUrl() {
    var m = /[#&?]filter=([^&]*)/.exec(location.hash + "&" + location.search);
    if (!m) { return ""; }
    try { return decodeURIComponent(m[1].replace(/\+/g, " ")); } catch (e) { return m[1]; }
  }
  box.addEventListener("input", function () {
    apply(box.value);
    try { history.replaceState(null, "", "#filter=" + encodeURIComponent(box.value)); } catch (e) { }
  });
  window.addEventListener("hashchange", function () { box.value = fromUrl(); apply(box.value); });
  box.value = fromUrl();
  apply(box.value);
  document.documentElement.setAttribute("data-ready", "1");
})();
