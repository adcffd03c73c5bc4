// baozi dashboard: a time-series line chart drawn as SVG: a time axis, a count axis, one line
// per series (a gap where a bucket has no sample), a legend with totals, and a tooltip that
// follows the pointer or the arrow keys. Labels come from the caller and are set as text.

import { clock, h, num, zoneName } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN = { left: 46, right: 14, top: 12, bottom: 34 };
const STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// A round step for about ``count`` ticks between 0 and ``max`` (1, 2 or 5 times a power of ten,
// never below 1: the counts are whole numbers).
function niceStep(max, count) {
  const raw = Math.max(1, max / count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(1, step);
}

function timeTicks(start, end, width) {
  const fits = Math.max(2, Math.floor(width / 70));
  const step = STEPS.find((s) => (end - start) / s <= fits) || 86400;
  const offset = new Date(start * 1000).getTimezoneOffset() * 60; // ticks on local round times
  const ticks = [];
  for (let t = Math.ceil((start - offset) / step) * step + offset; t <= end; t += step) ticks.push(t);
  return ticks;
}

function linePath(values, x, y) {
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      pen = false;
      return;
    }
    d += (pen ? " L " : " M ") + x(i).toFixed(1) + " " + y(v).toFixed(1);
    pen = true;
  });
  return d.trim();
}

function drawAxes(root, geo, spec) {
  const { left, top, plotW, plotH, yMax, yStep, x0, xEnd } = geo;
  for (let v = 0; v <= yMax; v += yStep) {
    const y = top + plotH - (v / yMax) * plotH;
    root.append(svg("line", { x1: left, x2: left + plotW, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, num(v)));
  }
  const span = xEnd - x0;
  for (const t of timeTicks(x0, xEnd, plotW)) {
    const x = left + ((t - x0) / span) * plotW;
    root.append(svg("line", { x1: x, x2: x, y1: top + plotH, y2: top + plotH + 4, class: "axis" }));
    root.append(svg("text", { x, y: top + plotH + 16, class: "tick", "text-anchor": "middle" }, clock(t, span > 43200)));
  }
  root.append(svg("line", { x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH, class: "axis" }));
  root.append(svg("line", { x1: left, x2: left, y1: top, y2: top + plotH, class: "axis" }));
  root.append(svg("text", { x: left + plotW / 2, y: top + plotH + 30, class: "axis-label", "text-anchor": "middle" },
    "time (" + zoneName(new Date()) + ")"));
  root.append(svg("text", {
    x: 0, y: 0, class: "axis-label", "text-anchor": "middle",
    transform: `translate(12 ${top + plotH / 2}) rotate(-90)`,
  }, spec.unit));
}

function tooltipLines(spec, i) {
  const t = spec.start + i * spec.bucket;
  const head = clock(t, true) + "–" + clock(t + spec.bucket, false);
  const value = (v) => (v === null || v === undefined ? "no sample" : num(v));
  return [head, ...spec.series.map((s) => s.label + ": " + value(s.values[i]))];
}

// Draw ``spec`` into ``box`` (a div the page keeps): {label, unit, start, end, bucket, empty
// (what to say when there is nothing to draw), totals (false: no sums in the legend), series:
// [{label, values, cls, dash}]} (dash: "dashed" or "dotted"). A redraw keeps the point the
// keyboard was on.
export function drawChart(box, spec) {
  const n = Math.max(0, ...spec.series.map((s) => s.values.length));
  const width = Math.max(300, box.clientWidth || 600);
  const height = width < 500 ? 190 : 230;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const peak = Math.max(0, ...spec.series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined)));
  const yStep = niceStep(peak, 4);
  const yMax = Math.max(yStep, Math.ceil(peak / yStep) * yStep);
  const x0 = spec.start;
  const xEnd = n ? spec.start + n * spec.bucket : spec.end ?? spec.start + spec.bucket;
  const geo = { left: MARGIN.left, top: MARGIN.top, plotW, plotH, yMax, yStep, x0, xEnd };
  const x = (i) => MARGIN.left + ((i + 0.5) / Math.max(n, 1)) * plotW;
  const y = (v) => MARGIN.top + plotH - (v / yMax) * plotH;

  const hadFocus = box.contains(document.activeElement) && document.activeElement.tagName === "svg";
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "chart", tabindex: 0, role: "img",
    "aria-label": spec.label + ": " + spec.series.map((s) => s.label).join(", ") +
      ". Arrow keys move between time buckets.",
  });
  drawAxes(root, geo, spec);
  spec.series.forEach((s, k) => {
    const cls = "series " + (s.cls || "s" + k) + (s.dash ? " " + s.dash : "");
    root.append(svg("path", { d: linePath(s.values, x, y), class: cls }));
    if (n <= 60) {
      s.values.forEach((v, i) => {
        if (v !== null && v !== undefined) root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: "dot " + cls }));
      });
    }
  });
  if (n === 0 || peak === 0) {
    const centre = { x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2 };
    root.append(svg("text", { ...centre, class: "nodata", "text-anchor": "middle" },
      spec.empty || (n === 0 ? "no samples in this window" : "nothing in this window")));
  }
  const guide = svg("line", { y1: MARGIN.top, y2: MARGIN.top + plotH, class: "guide", visibility: "hidden" });
  root.append(guide);
  const tip = h("div", { className: "tooltip", hidden: true, testid: "chart-tooltip", attrs: { "aria-hidden": "true" } });
  const show = (i) => {
    if (n === 0) return;
    i = Math.min(n - 1, Math.max(0, i));
    box.dataset.index = String(i);
    guide.setAttribute("x1", x(i));
    guide.setAttribute("x2", x(i));
    guide.setAttribute("visibility", "visible");
    tip.replaceChildren(...tooltipLines(spec, i).map((line, k) => h("div", { className: k ? "" : "tip-head" }, line)));
    tip.hidden = false;
    const left = Math.min(width - 170, Math.max(0, x(i) + 10));
    tip.style.left = left + "px";
  };
  const hide = () => {
    guide.setAttribute("visibility", "hidden");
    tip.hidden = true;
  };
  for (let i = 0; i < n; i++) {
    const colW = plotW / n;
    const hit = svg("rect", { x: MARGIN.left + i * colW, y: MARGIN.top, width: colW, height: plotH, class: "hit" });
    hit.append(svg("title", {}, tooltipLines(spec, i).join("\n")));
    hit.addEventListener("mouseenter", () => show(i));
    root.append(hit);
  }
  root.addEventListener("mouseleave", () => { if (document.activeElement !== root) hide(); });
  root.addEventListener("focus", () => show(box.dataset.index ? Number(box.dataset.index) : n - 1));
  root.addEventListener("blur", hide);
  root.addEventListener("keydown", (event) => {
    const at = Number(box.dataset.index || n - 1);
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: n - 1 };
    if (event.key in moves) {
      event.preventDefault();
      show(moves[event.key]);
    } else if (event.key === "Escape") hide();
  });

  const legend = h("ul", { className: "legend", testid: "chart-legend" }, spec.series.map((s, k) => {
    const total = s.values.reduce((sum, v) => sum + (v || 0), 0);
    const look = "swatch " + (s.cls || "s" + k) + (s.dash ? " " + s.dash : "");
    const swatch = h("span", { className: look, attrs: { "aria-hidden": "true" } });
    const sum = spec.totals === false ? null : h("span", { className: "muted" }, " · " + num(total));
    return h("li", { data: { series: s.label } }, swatch, s.label, sum);
  }));
  box.replaceChildren(root, tip, legend);
  if (hadFocus) root.focus();
}
