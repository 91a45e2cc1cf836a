// DOM building without markup: every name and value reaches the page as a text node or an
// attribute set through the DOM, never through innerHTML, so a key like "<img onerror=...>"
// is only ever text.

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "selected", "open", "tabIndex"]);

/** h("button", {class: "x", testid: "save", onclick}, "Save", child...) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** The same for SVG elements (icons drawn by the page). */
export function svg(tag, props, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  if (!props) return;
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "testid") el.dataset.testid = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// Characters that print as nothing (or rearrange what follows them): controls, zero-width
// marks, bidi overrides and isolates, the BOM. A name made of them would look empty or
// pretend to be another name, so they are shown as visible escapes. So are lone surrogates
// (a byte that is not UTF-8 in another tool's name, names.js), which print as "�": \xff.
const INVISIBLE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb\u{d800}-\u{dfff}]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, "gu");
const EDGE_SPACE = /^\s+|\s+$/gu;

function codepoint(ch) {
  const code = ch.codePointAt(0);
  if (code >= 0xdc80 && code <= 0xdcff) return `the byte 0x${(code - 0xdc00).toString(16).toUpperCase()}, not UTF-8`;
  return "U+" + code.toString(16).toUpperCase().padStart(4, "0");
}

/**
 * A group or key name as a <bdi> (its own direction, so a right-to-left override inside it
 * cannot reorder the text around it), with invisible characters and edge spaces made visible.
 */
export function nameNode(name, { className = "name" } = {}) {
  const el = h("bdi", { class: className, dir: "auto" });
  const text = String(name);
  if (text === "") {
    el.append(h("span", { class: "esc", text: "(empty)" }));
    return el;
  }
  let last = 0;
  const marks = [];
  for (const m of text.matchAll(INVISIBLE_ALL)) marks.push([m.index, m[0], "invisible"]);
  for (const m of text.matchAll(EDGE_SPACE)) {
    for (let i = 0; i < m[0].length; i++) {
      const ch = m[0][i];
      if (!INVISIBLE.test(ch)) marks.push([m.index + i, ch, "space"]);
    }
  }
  marks.sort((a, b) => a[0] - b[0]);
  for (const [index, ch, kind] of marks) {
    if (index < last) continue;
    if (index > last) el.append(text.slice(last, index));
    const shown = kind === "space" ? (ch === " " ? "␣" : codepoint(ch)) : escapeOf(ch);
    el.append(h("span", { class: "esc", title: codepoint(ch), text: shown }));
    last = index + ch.length;
  }
  if (last < text.length) el.append(text.slice(last));
  return el;
}

function escapeOf(ch) {
  const code = ch.codePointAt(0);
  if (ch === "\n") return "\\n";
  if (ch === "\t") return "\\t";
  if (ch === "\r") return "\\r";
  if (code >= 0xdc80 && code <= 0xdcff) return "\\x" + (code - 0xdc00).toString(16); // the byte
  if (code < 0x100) return "\\x" + code.toString(16).padStart(2, "0");
  return "\\u" + code.toString(16).padStart(4, "0");
}

/** Plain text for a title attribute or a message: the name, cut when very long. */
export function nameText(name, max = 200) {
  const text = String(name).replace(INVISIBLE_ALL, (ch) => escapeOf(ch));
  return text.length > max ? text.slice(0, max) + "…" : text;
}

/** "4 min 12 s", "expired" at 0. */
export function formatTtl(ms) {
  if (ms <= 0) return "expired";
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ${String(m % 60).padStart(2, "0")} min`;
  const days = Math.floor(hours / 24);
  return `${days} d ${hours % 24} h`;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1048576).toFixed(1)} MB`;
  return `${(n / 1073741824).toFixed(1)} GB`;
}

export function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

/** "12 s ago", "3 min ago", else the local date and time. */
export function formatWhen(epochSeconds, nowMs = Date.now()) {
  const ago = Math.round(nowMs / 1000 - epochSeconds);
  if (ago < 5 && ago > -5) return "just now";
  if (ago >= 0 && ago < 60) return `${ago} s ago`;
  if (ago >= 0 && ago < 3600) return `${Math.floor(ago / 60)} min ago`;
  return formatStamp(epochSeconds);
}

export function formatStamp(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** Restarts a CSS animation class on an element (a row that just changed). */
export function flash(el) {
  if (!el) return;
  el.classList.remove("flash");
  void el.offsetWidth; // a reflow, so the animation starts again
  el.classList.add("flash");
  clearTimeout(el._flashTimer);
  el._flashTimer = setTimeout(() => el.classList.remove("flash"), FLASH_MS);
}

const FLASH_MS = 2000;

/** Runs fn at most once per `ms`, the last call winning (group counts after a burst). */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  return function throttled() {
    if (timer) {
      pending = true;
      return;
    }
    fn();
    timer = setTimeout(function tick() {
      if (pending) {
        pending = false;
        fn();
        timer = setTimeout(tick, ms);
      } else timer = null;
    }, ms);
  };
}
