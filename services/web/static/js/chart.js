// Small hand-written SVG line and area charts for the supervisor dashboard. This file owns drawing
// only: the caller hands it time series over a fixed window and the sentence a screen reader should
// hear; colours come from CSS classes (so light and dark themes both apply) and nothing animates.

import { t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MINUTE_MS = 60_000;

// Series styles: 8 colours (CSS classes series-0 … series-7) times 3 dash patterns, so that two
// lines that share a colour still look different, and colour is never the only difference.
export const SERIES_STYLES = 24;
const DASHES = ["", "7 4", "2 3"];

export function series_class(index) {
  return `series-${index % 8}`;
}

export function series_dash(index) {
  return DASHES[Math.floor(index / 8) % DASHES.length];
}

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== "") node.setAttribute(k, String(v));
  }
  if (parent) parent.appendChild(node);
  return node;
}

// A tick step from 1, 2 or 5 times a power of ten, so that about `count` steps cover `max`.
export function nice_step(max, count = 4) {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

// Steps that read well for durations in seconds: 5 s … 1 h.
const DURATION_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

export function duration_step(max, count = 4) {
  if (!(max > 0)) return 5;
  const raw = max / count;
  return DURATION_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / 3600) * 3600;
}

// Whole counts never get fractional ticks.
export function count_step(max, count = 4) {
  return Math.max(1, nice_step(max, count));
}

// A swatch for a legend: a short line in the series' class and dash pattern.
export function swatch(index, { area = false } = {}) {
  const svg = el("svg", { class: "swatch", viewBox: "0 0 24 12", width: 24, height: 12, "aria-hidden": "true", focusable: "false" });
  if (area) el("rect", { x: 0, y: 6, width: 24, height: 6, class: `area ${series_class(index)}` }, svg);
  el("line", { x1: 1, y1: 6, x2: 23, y2: 6, class: `line ${series_class(index)}`, "stroke-dasharray": series_dash(index) }, svg);
  return svg;
}

// A line chart over [start, end] (Unix ms). Create it once in a container element; call update()
// with the data whenever it changes. It redraws at the container's pixel width, so text stays at its
// real size on a phone.
export class LineChart {
  // options: height (px), y_step(max) -> tick step, y_format(value) -> tick text,
  //          y_min_max (smallest top of the y axis)
  constructor(container, options = {}) {
    this.container = container;
    this.height = options.height ?? 170;
    this.y_step = options.y_step ?? count_step;
    this.y_format = options.y_format ?? ((v) => String(v));
    this.y_min_max = options.y_min_max ?? 1;
    this.svg = el("svg", { role: "img", class: "chart-svg", focusable: "false" }, container);
    this.last = null;
    this.width = 0;
    if (typeof ResizeObserver === "function") {
      this.observer = new ResizeObserver(() => {
        const w = Math.round(this.container.clientWidth);
        if (w && w !== this.width && this.last) this.draw(this.last);
      });
      this.observer.observe(container);
    }
  }

  // data: { start, end, label, series: [{ index, points: [[t, v | null]…], area }] }
  // A null value, or a gap of more than `gap_ms` between points, breaks the line.
  update(data) {
    this.last = data;
    this.svg.setAttribute("aria-label", data.label);
    this.draw(data);
  }

  draw({ start, end, series, gap_ms = 45_000 }) {
    const width = Math.max(240, Math.round(this.container.clientWidth) || 480);
    this.width = width;
    const height = this.height;
    const svg = this.svg;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    while (svg.lastChild) svg.removeChild(svg.lastChild);

    let max = 0;
    for (const s of series) {
      for (const [, v] of s.points) if (v !== null && v > max) max = v;
    }
    max = Math.max(max, this.y_min_max);
    const step = this.y_step(max);
    const top_value = Math.ceil(max / step) * step;

    // Room for the y labels depends on how wide the longest one is (about 7 px a character).
    const ticks = [];
    for (let v = 0; v <= top_value + step / 2; v += step) ticks.push(v);
    const label_chars = Math.max(...ticks.map((v) => this.y_format(v).length));
    const pad = { left: 10 + label_chars * 7, right: 12, top: 10, bottom: 38 };
    const plot_w = width - pad.left - pad.right;
    const plot_h = height - pad.top - pad.bottom;
    const x = (t) => pad.left + ((t - start) / (end - start)) * plot_w;
    const y = (v) => pad.top + plot_h - (v / top_value) * plot_h;

    const grid = el("g", { class: "grid", "aria-hidden": "true" }, svg);
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      el("line", { x1: pad.left, x2: pad.left + plot_w, y1: yy, y2: yy, class: v === 0 ? "axis" : "gridline" }, grid);
      const text = el("text", { x: pad.left - 6, y: yy, class: "tick tick-y", "text-anchor": "end", "dominant-baseline": "middle" }, grid);
      text.textContent = this.y_format(v);
    }
    // x axis: minutes before the newest sample, every 15 minutes (every 30 on narrow charts).
    const span_min = Math.round((end - start) / MINUTE_MS);
    const every = plot_w < 300 ? 30 : 15;
    for (let m = span_min; m >= 0; m -= every) {
      const xx = Math.round(x(end - m * MINUTE_MS)) + 0.5;
      el("line", { x1: xx, x2: xx, y1: pad.top, y2: pad.top + plot_h, class: "gridline" }, grid);
      const anchor = m === span_min ? "start" : m === 0 ? "end" : "middle";
      const text = el("text", { x: xx, y: pad.top + plot_h + 14, class: "tick tick-x", "text-anchor": anchor }, grid);
      text.textContent = String(m);
    }
    const title = el("text", { x: pad.left + plot_w / 2, y: height - 6, class: "axis-title", "text-anchor": "middle" }, grid);
    title.textContent = t("dash.chart.minutesAgo");

    const plot = el("g", { class: "plot", "aria-hidden": "true" }, svg);
    let drawn = 0;
    for (const s of series) {
      const runs = split_runs(s.points, start, gap_ms);
      const cls = series_class(s.index);
      for (const run of runs) {
        drawn += run.length;
        if (s.area && run.length > 1) {
          let d = `M${fx(x(run[0][0]))},${fx(y(0))}`;
          for (const [t, v] of run) d += `L${fx(x(t))},${fx(y(v))}`;
          d += `L${fx(x(run[run.length - 1][0]))},${fx(y(0))}Z`;
          el("path", { d, class: `area ${cls}` }, plot);
        }
        if (run.length === 1) {
          el("circle", { cx: fx(x(run[0][0])), cy: fx(y(run[0][1])), r: 2.5, class: `dot ${cls}` }, plot);
          continue;
        }
        let d = "";
        run.forEach(([t, v], i) => { d += `${i ? "L" : "M"}${fx(x(t))},${fx(y(v))}`; });
        el("path", { d, class: `line ${cls}`, "stroke-dasharray": series_dash(s.index) }, plot);
      }
    }
    // How many data points the lines are drawn through: for tests and tools, not for people.
    svg.setAttribute("data-points", String(drawn));
  }
}

function fx(n) {
  return Math.round(n * 10) / 10;
}

// Split points (sorted by time) into unbroken runs inside the window.
function split_runs(points, start, gap_ms) {
  const runs = [];
  let run = [];
  let prev_t = null;
  for (const [t, v] of points) {
    if (t < start) { prev_t = t; continue; }
    if (v === null || (prev_t !== null && t - prev_t > gap_ms)) {
      if (run.length) runs.push(run);
      run = [];
    }
    if (v !== null) run.push([t, v]);
    prev_t = t;
  }
  if (run.length) runs.push(run);
  return runs;
}
