// One ticker for every countdown and relative time on the page. The DOM is the registry: an
// element with data-deadline (ms since the epoch, on this machine's clock) counts down; one
// with data-when (epoch seconds) says how long ago. A countdown reaching zero says "expired"
// and sends a bubbling `ttl-expired` event, so the pane that owns it can look again.

import { formatTtl, formatWhen, formatStamp, h } from "./dom.js";

export function startClock() {
  const schedule = () => setTimeout(() => {
    tick();
    schedule();
  }, 1000 - (Date.now() % 1000) + 5);
  tick();
  schedule();
}

export function tick(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-deadline]")) paintCountdown(el, now);
  for (const el of root.querySelectorAll("[data-when]")) {
    const text = formatWhen(Number(el.dataset.when), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

function paintCountdown(el, now) {
  const left = Number(el.dataset.deadline) - now;
  const text = formatTtl(left);
  if (el.textContent !== text) el.textContent = text;
  if (left <= 0) {
    if (!el.classList.contains("expired")) {
      el.classList.add("expired");
      el.classList.remove("soon");
      el.dispatchEvent(new CustomEvent("ttl-expired", { bubbles: true }));
    }
  } else {
    el.classList.remove("expired");
    el.classList.toggle("soon", left < 60_000);
  }
}

/**
 * A countdown from `ttlMs` as read at `receivedAt` (when the response arrived here). The
 * server's `now` and `expires_at` say the same as ttl_ms; counting from our own receipt time
 * keeps the two machines' clocks out of it.
 */
export function countdown(ttlMs, { testid, receivedAt = Date.now(), none = "no expiry" } = {}) {
  if (ttlMs === null || ttlMs === undefined) {
    return h("span", { class: "ttl ttl-none", testid, text: none });
  }
  const deadline = receivedAt + Number(ttlMs);
  const el = h("span", { class: "ttl", testid, dataset: { deadline: String(deadline) } });
  el.title = "Expires at " + formatStamp(deadline / 1000);
  paintCountdown(el, Date.now());
  return el;
}

export function when(epochSeconds, { testid } = {}) {
  const el = h("time", {
    testid,
    dataset: { when: String(epochSeconds) },
    datetime: new Date(epochSeconds * 1000).toISOString(),
    title: formatStamp(epochSeconds),
  });
  el.textContent = formatWhen(epochSeconds);
  return el;
}

/** Milliseconds left on a countdown element, or null. */
export function msLeft(el) {
  if (!el || !el.dataset.deadline) return null;
  return Number(el.dataset.deadline) - Date.now();
}
