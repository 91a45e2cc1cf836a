// How the page hears about changes: the server's event stream on backends with a change feed,
// else a poll every poll_ms. Either way the header says which, in words, and says so too when
// the stream is not to be trusted: the inspector does not answer (disconnected), or it cannot
// read the feed (its reason). Whenever the page may have missed changes (back from either, or
// told it fell behind), it reads again what it shows.

import { api, parseJson } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000];

export class Live {
  constructor({ onChange, onRate, onResync, onPoll, onStatus, onReload }) {
    Object.assign(this, { onChange, onRate, onResync, onPoll, onStatus, onReload });
    this.source = null;
    this.failures = 0;
    this.wasOpen = false;
    this.pollTimer = null;
    this.feedError = null; // the server's reason while its feed reader fails
    this.feedEvents = 0; // feed events seen: a reading of /api/info older than one is stale
    this.missed = false; // set when the server said this page fell behind
  }

  start(info) {
    if (info.live === "feed") this.connect();
    else this.poll(Number(info.poll_ms) || 2000);
  }

  connect() {
    if (this.source) this.source.close();
    const source = new EventSource("/api/live", { withCredentials: true });
    this.source = source;
    const data = (event) => {
      try {
        return parseJson(event.data);
      } catch {
        return null; // a malformed event is skipped
      }
    };
    source.addEventListener("hello", () => {
      const resumed = this.wasOpen || this.failures > 0 || this.missed;
      this.failures = 0;
      this.wasOpen = true;
      this.missed = false;
      this.feedError = null;
      this.showStatus();
      this.checkFeed(source);
      if (resumed) this.onResync(); // changes may have been missed while away
    });
    source.addEventListener("change", (event) => {
      const change = data(event);
      if (change) this.onChange(change);
    });
    source.addEventListener("rate", (event) => {
      const tick = data(event);
      if (tick) this.onRate(tick);
    });
    source.addEventListener("feed", (event) => {
      const feed = data(event);
      if (!feed || typeof feed !== "object") return;
      this.feedEvents++;
      if (feed.ok === false) {
        this.feedError = String(feed.message || "the change feed could not be read");
        this.showStatus();
      } else if (feed.ok === true) {
        // The server reads on from where it was, but what it could not keep (a trimmed feed,
        // a server that lost data) is gone: read again what the page shows.
        this.feedError = null;
        this.showStatus();
        this.onResync();
      }
    });
    source.addEventListener("reload", (event) => {
      // The server dropped this stream (the page fell behind): a new one at once, and once it
      // says hello, everything shown is read again (nothing is missed in between).
      const reason = data(event);
      this.onReload(reason && typeof reason.reason === "string" ? reason.reason : "");
      this.missed = true;
      this.connect();
    });
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      this.failures++;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status): retry ourselves, more slowly each time.
        const delay = RETRY_MS[Math.min(this.failures - 1, RETRY_MS.length - 1)];
        this.onStatus("down", "Disconnected", `The inspector refused the change stream; trying again in ${delay / 1000} s.`);
        setTimeout(() => {
          if (source === this.source) this.connect();
        }, delay);
      } else {
        this.onStatus(
          "down",
          "Disconnected",
          "The inspector does not answer (stopped, or the network); the browser keeps reconnecting, and the page reads everything again when it is back.",
        );
      }
    });
  }

  /** A page that connects while the feed fails hears no `feed` event: /api/info says. */
  async checkFeed(source) {
    const seen = this.feedEvents;
    let info;
    try {
      info = await api.info();
    } catch {
      return;
    }
    if (source !== this.source || seen !== this.feedEvents || !info || !info.feed_error) return;
    this.feedError = String(info.feed_error);
    this.showStatus();
  }

  showStatus() {
    if (this.feedError === null) {
      this.onStatus("live", "Live", "Changes appear as they happen (the change feed).");
    } else {
      this.onStatus(
        "feed-failed",
        `Change feed failed: ${this.feedError}`,
        `The inspector cannot read the change feed (${this.feedError}); it tries again each second. Changes may not show until it is back; then the page reads everything again.`,
      );
    }
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
