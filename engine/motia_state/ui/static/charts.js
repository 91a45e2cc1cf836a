// The inspector's pictures: bars (items per group, expiries ahead) and a line (changes per
// second over the last minutes), as SVG built node by node.
//
// Labels are group names, i.e. anyone's text: they go in with textContent. Numbers are
// checked before they become coordinates (a NaN in an attribute draws nothing and says
// nothing), so empty, single and all-zero data still give a readable picture. Colours are
// classes styled in parts.css through custom properties (--chart-bar, --chart-line,
// --chart-grid, --chart-text), with presentation attributes as the fallback when no
// stylesheet is loaded.

const SVG_NS = "http://www.w3.org/2000/svg";
const FALLBACK = { bar: "#4f7fd9", line: "#3c8d6f", grid: "#8884", text: "#777" };
const CHAR_PX = 6.6; // about one character of the 12px chart font

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function px(x) {
  return Math.round(x * 100) / 100;
}

function finite(x) {
  const n = typeof x === "number" ? x : Number(x);
  return Number.isFinite(n) ? n : 0;
}

function size(value, fallback, min) {
  return Number.isFinite(value) && value >= min ? value : fallback;
}

/** A readable number: 1,234 / 0.25 / 12.3k / 4.5M. */
export function formatNumber(value) {
  const v = finite(value);
  const abs = Math.abs(v);
  if (abs >= 100000) {
    return new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 }).format(v);
  }
  const digits = abs >= 100 || Number.isInteger(v) ? 0 : abs >= 10 ? 1 : 2;
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(v);
}

/** The smallest 1, 2, 2.5 or 5 times a power of ten at or above value (1 for nothing). */
export function niceMax(value) {
  const v = finite(value);
  if (v <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  const f = v / exp;
  const step = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return Number((step * exp).toPrecision(12));
}

// unit: a word ("items") or a [singular, plural] pair (["item", "items"]: "1 item").
function withUnit(value, unit) {
  const word = Array.isArray(unit) ? String(unit[value === 1 ? 0 : 1] ?? "") : unit;
  return word ? `${formatNumber(value)} ${word}` : formatNumber(value);
}

function cut(text, chars) {
  const s = String(text);
  if (s.length <= chars) return s;
  return `${s.slice(0, Math.max(1, chars - 1))}…`;
}

function frame(kind, title, width, height, summary) {
  const root = svg("svg", {
    xmlns: SVG_NS,
    class: `chart ${kind}-chart`,
    role: "img",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "aria-label": summary,
  });
  root.append(svg("title", {}, title ? `${title}: ${summary}` : summary));
  return root;
}

function text(className, x, y, content, extra = {}) {
  return svg(
    "text",
    { class: className, x: px(x), y: px(y), fill: FALLBACK.text, "font-size": 12, ...extra },
    content,
  );
}

/**
 * Horizontal bars [{label, value}] with their labels and values.
 *
 * Over maxBars (default 15) only the largest are drawn, largest first, with "+M more";
 * otherwise the given order is kept (bucketed data, e.g. expiries, reads left to right).
 */
export function barChart(data, { title = "", unit = "", width, height, maxBars } = {}) {
  const w = size(width, 480, 120);
  const limit = Number.isInteger(maxBars) && maxBars > 0 ? maxBars : 15;
  const rows = (Array.isArray(data) ? data : [])
    .filter((d) => d !== null && typeof d === "object")
    .map((d) => ({ label: d.label === undefined || d.label === null ? "" : String(d.label), value: finite(d.value) }));
  let shown = rows;
  if (rows.length > limit) {
    shown = rows
      .map((row, index) => ({ row, index }))
      .sort((p, q) => q.row.value - p.row.value || p.index - q.index)
      .slice(0, limit)
      .map((p) => p.row);
  }
  const more = rows.length - shown.length;
  const pad = 6;
  const rowCount = Math.max(1, shown.length) + (more ? 1 : 0);
  const h = size(height, pad * 2 + rowCount * 22, 40);
  const rowH = (h - pad * 2) / rowCount;
  const barH = Math.max(2, Math.min(16, rowH - 6));
  const listed = shown.slice(0, 5).map((r) => `${cut(r.label, 40)} ${withUnit(r.value, unit)}`);
  const summary = rows.length
    ? `${title ? `${title}, ` : ""}${rows.length} bar${rows.length === 1 ? "" : "s"}: ${listed.join(", ")}${shown.length > 5 || more ? ", …" : ""}`
    : `${title ? `${title}: ` : ""}no data`;
  const root = frame("bar", title, w, h, summary);
  if (!shown.length) {
    root.append(text("chart-empty", w / 2, h / 2 + 4, "no data", { "text-anchor": "middle" }));
    return root;
  }
  const labelW = Math.max(60, Math.min(w * 0.34, 220));
  const valueW = 64;
  const barX = labelW + 8;
  const barMax = Math.max(1, w - barX - valueW);
  const top = Math.max(0, ...shown.map((r) => r.value));
  const scale = top > 0 ? barMax / top : 0;
  const chars = Math.max(4, Math.floor(labelW / CHAR_PX));
  shown.forEach((row, i) => {
    const y = pad + i * rowH;
    const mid = y + rowH / 2;
    const g = svg("g", { class: "chart-row" });
    g.append(svg("title", {}, `${row.label}: ${withUnit(row.value, unit)}`));
    g.append(text("chart-label", labelW, mid + 4, cut(row.label, chars), { "text-anchor": "end" }));
    const barW = Math.max(0, row.value * scale);
    g.append(
      svg("rect", {
        class: "chart-bar",
        x: px(barX),
        y: px(mid - barH / 2),
        width: px(Math.max(barW, row.value > 0 ? 1 : 0)),
        height: px(barH),
        rx: 2,
        fill: FALLBACK.bar,
      }),
    );
    g.append(text("chart-value", barX + barW + 4, mid + 4, withUnit(row.value, unit)));
    root.append(g);
  });
  if (more) {
    const y = pad + shown.length * rowH + rowH / 2 + 4;
    root.append(text("chart-more", barX, y, `+${more.toLocaleString("en-US")} more`));
  }
  return root;
}

/** "-5m", "-30s", "-2h" for a tick so many seconds before now. */
export function relativeTime(seconds) {
  const s = Math.round(seconds);
  if (s === 0) return "now";
  if (s < 60) return `-${s}s`;
  if (s % 3600 === 0) return `-${s / 3600}h`;
  if (s < 7200) return `-${Math.round(s / 60)}m`;
  return `-${Math.round(s / 360) / 10}h`;
}

const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

/**
 * A line (with its area) of points [[epochSeconds, value]], oldest to newest.
 *
 * The time axis runs to `now` (option; default the last point) and spans `span` seconds
 * (option; default the points' own span, at least a minute), labelled relative ("-5m" …
 * "now"); the value axis runs from 0 to a nice maximum. The last value is labelled.
 */
export function lineChart(points, { title = "", unit = "", width, height, now, span } = {}) {
  const w = size(width, 480, 160);
  const h = size(height, 160, 80);
  const pts = (Array.isArray(points) ? points : [])
    .filter((p) => Array.isArray(p) && Number.isFinite(Number(p[0])) && Number.isFinite(Number(p[1])))
    .map((p) => [Number(p[0]), Number(p[1])])
    .sort((p, q) => p[0] - q[0]);
  const end = Number.isFinite(now) ? now : pts.length ? pts[pts.length - 1][0] : Date.now() / 1000;
  const first = pts.length ? pts[0][0] : end - 300;
  const window = Number.isFinite(span) && span > 0 ? span : Math.max(60, end - first);
  const start = end - window;
  const inView = pts.filter((p) => p[0] >= start && p[0] <= end);
  const values = inView.map((p) => p[1]);
  // A loop, not Math.max(...values): a spread of a long series passes the argument limit.
  let peak = values.length ? -Infinity : 0;
  let low = 0;
  for (const v of values) {
    if (v > peak) peak = v;
    if (v < low) low = v;
  }
  const yMax = niceMax(peak);
  const last = inView[inView.length - 1];
  const spanText = relativeTime(window).slice(1);
  const summary = inView.length
    ? `${title ? `${title}: ` : ""}last ${withUnit(last[1], unit)}, peak ${withUnit(peak, unit)} over the last ${spanText}`
    : `${title ? `${title}: ` : ""}no data over the last ${spanText}`;
  const root = frame("line", title, w, h, summary);

  const left = 8 + Math.max(3, formatNumber(yMax).length) * CHAR_PX;
  const right = 12 + Math.max(4, (last ? withUnit(last[1], unit) : "").length) * CHAR_PX;
  const top = 10;
  const bottom = 22;
  const plotW = Math.max(10, w - left - right);
  const plotH = Math.max(10, h - top - bottom);
  const base = top + plotH;
  const range = yMax - low || 1;
  const x = (t) => left + ((t - start) / window) * plotW;
  const y = (v) => base - ((v - low) / range) * plotH;

  const grid = svg("g", { class: "chart-axes" });
  for (const tick of [low, low + range / 2, yMax]) {
    const ty = y(tick);
    grid.append(
      svg("line", { class: "chart-grid", x1: px(left), x2: px(left + plotW), y1: px(ty), y2: px(ty), stroke: FALLBACK.grid }),
    );
    grid.append(text("chart-tick", left - 6, ty + 4, formatNumber(tick), { "text-anchor": "end" }));
  }
  const step = TIME_STEPS.find((s) => window / s <= 5) || Math.ceil(window / 5);
  for (let back = 0; back <= window + 1e-9; back += step) {
    const tx = x(end - back);
    grid.append(svg("line", { class: "chart-grid chart-grid-x", x1: px(tx), x2: px(tx), y1: top, y2: px(base), stroke: FALLBACK.grid }));
    const anchor = back === 0 ? "end" : tx - left < 20 ? "start" : "middle";
    grid.append(text("chart-tick", tx, base + 16, relativeTime(back), { "text-anchor": anchor }));
  }
  root.append(grid);

  if (!inView.length) {
    root.append(text("chart-empty", left + plotW / 2, top + plotH / 2 + 4, "no data", { "text-anchor": "middle" }));
    return root;
  }
  if (inView.length > 1) {
    const line = inView.map((p, i) => `${i ? "L" : "M"}${px(x(p[0]))},${px(y(p[1]))}`).join(" ");
    const area = `${line} L${px(x(last[0]))},${px(y(Math.max(low, 0)))} L${px(x(inView[0][0]))},${px(y(Math.max(low, 0)))} Z`;
    root.append(svg("path", { class: "chart-area", d: area, fill: FALLBACK.line, "fill-opacity": 0.15, stroke: "none" }));
    root.append(svg("path", { class: "chart-line", d: line, fill: "none", stroke: FALLBACK.line, "stroke-width": 1.5 }));
  }
  const lx = x(last[0]);
  const ly = y(last[1]);
  root.append(svg("circle", { class: "chart-dot", cx: px(lx), cy: px(ly), r: 3, fill: FALLBACK.line }));
  root.append(text("chart-last", lx + 6, Math.min(base, Math.max(top + 8, ly + 4)), withUnit(last[1], unit)));
  return root;
}
