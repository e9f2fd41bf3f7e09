// The CSS and JavaScript inlined into every flame graph SVG, so that the file works alone
// (no network, no external files). The script reads the frames the writer emitted in
// pre-order (<g data-n=name data-v=value data-d=depth>) and adds: zoom on click ("Reset
// Zoom" or a click on the root undoes it), search by regular expression (the "Search"
// button, Ctrl-F or F3; Esc clears) with the matched share, and details on hover.
// URL parameters ?z=<frame index>&s=<regexp> (or the same after '#') zoom and search on load.
#pragma once

namespace ctbpf::export_detail {

inline constexpr const char* kSvgStyle = R"CSS(
text { font-family: Verdana, "DejaVu Sans", sans-serif; font-size: 12px; fill: rgb(0,0,0); }
#title { text-anchor: middle; font-size: 17px; }
#subtitle { text-anchor: middle; fill: rgb(90,90,90); }
#search, #matched { text-anchor: end; }
.button { cursor: pointer; opacity: 0.8; }
.button:hover { opacity: 1; text-decoration: underline; }
#frames > g { cursor: pointer; }
#frames > g:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.5; }
#frames text { pointer-events: none; }
.parent { opacity: 0.5; }
.hide { display: none; }
)CSS";

inline constexpr const char* kSvgScript = R"JS(
"use strict";
(function () {
  const MATCH = "rgb(230,0,230)";
  let XPAD = 10, FULL = 0, CHAR = 7;
  const frames = [];
  let zoomed = -1, term = null;
  let details, unzoomBtn, searchBtn, matched;

  // Same rule as the writer: at least 3 characters or nothing, ".." when cut.
  function fit(name, w) {
    const max = Math.floor((w - 6) / CHAR);
    if (max < 3) return "";
    return name.length <= max ? name : name.substring(0, max - 2) + "..";
  }
  function place(f, x, w) {
    f.r.setAttribute("x", x.toFixed(2));
    f.r.setAttribute("width", w.toFixed(2));
    f.t.setAttribute("x", (x + 3).toFixed(2));
    f.t.textContent = fit(f.n, w);
  }
  function mark(f, cls) {
    f.g.classList.remove("hide", "parent");
    if (cls) f.g.classList.add(cls);
  }

  function zoom(i) {
    if (i <= 0 || i >= frames.length) return unzoom();
    const z = frames[i], ratio = FULL / z.w, above = new Set();
    for (let a = z.parent; a >= 0; a = frames[a].parent) above.add(a);
    zoomed = i;
    unzoomBtn.classList.remove("hide");
    frames.forEach((f, j) => {
      if (j >= i && j < z.end) { mark(f); place(f, XPAD + (f.x - z.x) * ratio, f.w * ratio); }
      else if (above.has(j)) { mark(f, "parent"); place(f, XPAD, FULL); }
      else mark(f, "hide");
    });
    if (term !== null) search(term);
  }
  function unzoom() {
    zoomed = -1;
    unzoomBtn.classList.add("hide");
    frames.forEach((f) => { mark(f); place(f, f.x, f.w); });
    if (term !== null) search(term);
  }

  function search(t) {
    let re;
    try { re = new RegExp(t); }
    catch (e) { re = new RegExp(t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")); }  // take it literally
    term = t;
    if (!frames.length) return;
    // Share of the visible root; a match inside a counted match is not counted again.
    const root = zoomed < 0 ? 0 : zoomed, total = frames[root].v;
    let sum = 0, until = -1;
    frames.forEach((f, j) => {
      const hit = !f.g.classList.contains("hide") && re.test(f.n);
      f.r.setAttribute("fill", hit ? MATCH : f.fill);
      if (!hit || j < until) return;
      sum += j < root ? total : f.v;  // a matched ancestor of the zoomed frame covers it
      until = f.end;
    });
    searchBtn.textContent = "Reset Search";
    matched.textContent = "Matched: " + (total > 0 ? 100 * Math.min(sum, total) / total : 0).toFixed(1) + "%";
    matched.classList.remove("hide");
  }
  function resetSearch() {
    term = null;
    frames.forEach((f) => f.r.setAttribute("fill", f.fill));
    searchBtn.textContent = "Search";
    matched.classList.add("hide");
  }
  function askSearch() {
    const t = prompt("Search frames (regular expression):", term || "");
    if (t) search(t);
  }

  function init() {
    const svg = document.documentElement;
    XPAD = +svg.getAttribute("data-xpad");
    FULL = +svg.getAttribute("data-full");
    CHAR = +svg.getAttribute("data-char");
    details = document.getElementById("details");
    unzoomBtn = document.getElementById("unzoom");
    searchBtn = document.getElementById("search");
    matched = document.getElementById("matched");

    // Pre-order plus depth gives each frame its parent and the end of its subtree.
    const open = [];
    document.querySelectorAll("#frames > g").forEach((g, i) => {
      const r = g.querySelector("rect");
      const f = {
        g: g, r: r, t: g.querySelector("text"), n: g.getAttribute("data-n"),
        v: +g.getAttribute("data-v"), d: +g.getAttribute("data-d"),
        x: +r.getAttribute("x"), w: +r.getAttribute("width"), fill: r.getAttribute("fill"),
        tip: g.querySelector("title").textContent, parent: -1, end: 0,
      };
      while (open.length && frames[open[open.length - 1]].d >= f.d) frames[open.pop()].end = i;
      f.parent = open.length ? open[open.length - 1] : -1;
      open.push(i);
      frames.push(f);
      g.addEventListener("click", () => zoom(i));
      g.addEventListener("mouseover", () => { details.textContent = f.tip; });
      g.addEventListener("mouseout", () => { details.textContent = " "; });
    });
    while (open.length) frames[open.pop()].end = frames.length;

    unzoomBtn.addEventListener("click", unzoom);
    searchBtn.addEventListener("click", () => (term === null ? askSearch() : resetSearch()));
    window.addEventListener("keydown", (e) => {
      if (e.key === "F3" || ((e.ctrlKey || e.metaKey) && e.key === "f")) {
        e.preventDefault();
        askSearch();
      } else if (e.key === "Escape") {
        resetSearch();
      }
    });

    const p = new URLSearchParams(location.search || location.hash.slice(1));
    if (p.has("z")) zoom(parseInt(p.get("z"), 10));
    if (p.get("s")) search(p.get("s"));
    svg.setAttribute("data-ready", String(frames.length));  // lets a headless check see we ran
  }
  window.addEventListener("load", init);
})();
)JS";

}  // namespace ctbpf::export_detail
