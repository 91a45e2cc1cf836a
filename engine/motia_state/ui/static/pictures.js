// The three pictures: items per group (bars), changes per second over the last five minutes
// (a line fed by /api/metrics, then by the stream's `rate` events), and when the open group's
// items expire (bars from /api/expiries). Drawn by charts.js; this module feeds them.

import { api } from "./api.js";
import { h, clear, nameNode, nameText, formatCount, throttle } from "./dom.js";
import { barChart, lineChart } from "./charts.js";

const WINDOW_S = 300;
const TOP_GROUPS = 4;
const STORE = "motia-state.pictures";

export class Pictures {
  constructor(ctx, root, toggle) {
    this.ctx = ctx;
    this.root = root;
    this.toggle = toggle;
    this.groupsBody = root.querySelector('[data-testid="chart-groups"] .picture-body');
    this.rateBody = root.querySelector('[data-testid="chart-rate"] .picture-body');
    this.expiriesBody = root.querySelector('[data-testid="chart-expiries"] .picture-body');
    this.expiriesGroupLabel = root.querySelector(".picture-group");
    this.rate = new Map(); // epoch second -> count
    this.rateLive = null;
    this.group = null;
    this.expirySeq = 0;
    this.drawRateSoon = throttle(() => this.drawRate(), 1000);
    this.reloadExpiriesSoon = throttle(() => this.loadExpiries(), 3000);
    let hidden = false;
    try {
      hidden = localStorage.getItem(STORE) === "hidden";
    } catch {
      /* no storage: shown */
    }
    this.setHidden(hidden);
    toggle.addEventListener("click", () => {
      this.setHidden(!this.root.hidden);
      try {
        localStorage.setItem(STORE, this.root.hidden ? "hidden" : "shown");
      } catch {
        /* not remembered */
      }
    });
  }

  setHidden(hidden) {
    this.root.hidden = hidden;
    this.toggle.setAttribute("aria-pressed", hidden ? "false" : "true");
    this.toggle.setAttribute("aria-label", hidden ? "Show the pictures" : "Hide the pictures");
    this.toggle.title = hidden ? "Show the pictures" : "Hide the pictures";
    if (!hidden) this.drawRate();
  }

  async loadMetrics() {
    let data;
    try {
      data = await api.metrics();
    } catch (e) {
      this.message(this.rateBody, `The rate could not be read: ${e.message}`, true);
      return;
    }
    this.drawGroups(data.groups || []);
    const rate = data.rate || {};
    this.rateLive = Boolean(rate.live);
    if (this.rateLive) {
      for (const [t, count] of rate.seconds || []) this.rate.set(Number(t), Number(count));
    }
    this.drawRate();
  }

  drawGroups(groups) {
    clear(this.groupsBody);
    const nonEmpty = groups.filter((g) => g.items > 0);
    if (!nonEmpty.length) {
      this.message(this.groupsBody, "No items yet.");
      return;
    }
    // The largest few: the picture is small, and the groups pane lists them all.
    const sorted = [...nonEmpty].sort((a, b) => b.items - a.items || (a.group < b.group ? -1 : 1));
    this.groupsBody.append(
      barChart(
        // as text with its invisible characters and bytes that are not UTF-8 shown (\xff)
        sorted.map((g) => ({ label: nameText(g.group, 1000), value: g.items })),
        { title: "Items per group", unit: ["item", "items"], maxBars: TOP_GROUPS },
      ),
    );
  }

  onRate(event) {
    if (!this.rateLive) this.rateLive = true;
    this.rate.set(Number(event.t), Number(event.count));
    this.drawRateSoon();
  }

  drawRate() {
    if (this.root.hidden) return;
    if (this.rateLive === null) return;
    if (!this.rateLive) {
      this.message(this.rateBody, "The rate needs a change feed; this backend has none.");
      return;
    }
    const times = [...this.rate.keys()];
    const last = times.length ? Math.max(...times) : Math.floor(Date.now() / 1000);
    for (const t of times) if (t <= last - WINDOW_S) this.rate.delete(t);
    const points = [];
    for (let t = last - WINDOW_S + 1; t <= last; t++) points.push([t, this.rate.get(t) ?? 0]);
    clear(this.rateBody).append(
      lineChart(points, { title: "Changes per second, last 5 minutes", unit: "changes/s", now: last, span: WINDOW_S }),
    );
  }

  /** The open group changed (or none is open). */
  setGroup(group) {
    if (group === this.group) return;
    this.group = group;
    clear(this.expiriesGroupLabel);
    if (group !== null) this.expiriesGroupLabel.append("· ", nameNode(group));
    this.loadExpiries();
  }

  async loadExpiries() {
    const seq = ++this.expirySeq;
    const group = this.group;
    if (group === null) {
      this.message(this.expiriesBody, "Open a group to see when its items expire.");
      return;
    }
    let data;
    try {
      data = await api.expiries(group);
    } catch (e) {
      if (seq === this.expirySeq) this.message(this.expiriesBody, `Expiries could not be read: ${e.message}`, true);
      return;
    }
    if (seq !== this.expirySeq) return;
    clear(this.expiriesBody);
    const buckets = data.buckets || [];
    const withTtl = buckets.reduce((n, b) => n + b.count, 0);
    if (!withTtl) {
      this.message(this.expiriesBody, data.without_ttl ? "No item of this group expires." : "This group is empty.");
    } else {
      this.expiriesBody.append(barChart(buckets.map((b) => ({ label: b.label, value: b.count })), { title: "Expiries ahead", unit: ["item", "items"] }));
    }
    const notes = [];
    if (data.without_ttl) notes.push(`${formatCount(data.without_ttl)} without expiry`);
    if (data.complete === false) notes.push(`from the first ${formatCount(data.scanned)} items`);
    if (notes.length && withTtl) this.expiriesBody.append(h("p", { class: "picture-note", text: notes.join(" · ") }));
  }

  message(body, text, error = false) {
    clear(body).append(h("p", { class: `picture-message ${error ? "error" : ""}`, text }));
  }
}
