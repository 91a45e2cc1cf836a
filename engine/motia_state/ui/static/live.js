// How the page hears about changes: the server's event stream on backends with a change feed,
// else a poll every poll_ms. Either way the header says which, in words.

import { parseJson } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000];

export class Live {
  constructor({ onChange, onRate, onResync, onPoll, onStatus }) {
    Object.assign(this, { onChange, onRate, onResync, onPoll, onStatus });
    this.source = null;
    this.failures = 0;
    this.wasOpen = false;
    this.pollTimer = null;
  }

  start(info) {
    if (info.live === "feed") this.connect();
    else this.poll(Number(info.poll_ms) || 2000);
  }

  connect() {
    if (this.source) this.source.close();
    const source = new EventSource("/api/live", { withCredentials: true });
    this.source = source;
    source.addEventListener("hello", () => {
      const resumed = this.wasOpen || this.failures > 0;
      this.failures = 0;
      this.wasOpen = true;
      this.onStatus("live", "Live", "Changes appear as they happen (the change feed).");
      if (resumed) this.onResync(); // changes may have been missed while disconnected
    });
    source.addEventListener("change", (event) => {
      let change;
      try {
        change = parseJson(event.data);
      } catch {
        return;
      }
      this.onChange(change);
    });
    source.addEventListener("rate", (event) => {
      try {
        this.onRate(parseJson(event.data));
      } catch {
        /* a malformed tick is skipped */
      }
    });
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status): retry ourselves, more slowly each time.
        const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
        this.failures++;
        this.onStatus("down", "Disconnected", `The change stream closed; trying again in ${delay / 1000} s.`);
        setTimeout(() => {
          if (source === this.source) this.connect();
        }, delay);
      } else {
        this.failures++;
        this.onStatus("down", "Reconnecting…", "The change stream was interrupted; the browser is reconnecting.");
      }
    });
  }

  poll(ms) {
    const seconds = ms / 1000;
    const every = Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(1)} s`;
    this.onStatus("poll", `polling every ${every}: this backend has no change feed`, "This backend cannot send changes, so the page reads again on a timer.");
    let running = false;
    this.pollTimer = setInterval(async () => {
      if (running || document.hidden) return;
      running = true;
      try {
        await this.onPoll();
      } finally {
        running = false;
      }
    }, ms);
  }
}
