// The groups pane: every group with its item count, how many have a TTL and its size, a search
// box (server side, case-insensitive). Counts follow the change feed, at most once a second.

import { api } from "./api.js";
import { h, svg, clear, nameNode, nameText, formatBytes, formatCount, throttle } from "./dom.js";
import { searchBox, markSelected } from "./listbox.js";

export class GroupsPane {
  constructor(ctx, root) {
    this.ctx = ctx;
    this.root = root;
    this.groups = [];
    this.selected = null;
    this.search = "";
    this.loaded = false;
    this.seq = 0;
    this.listeners = [];
    this.reloadSoon = throttle(() => this.load({ quiet: true }), 1000);
    this.build();
  }

  build() {
    this.count = h("span", { class: "pane-count", testid: "groups-total" });
    this.searchBox = searchBox({
      testid: "groups-search",
      placeholder: "Search groups",
      label: "Search groups",
      onSearch: (text) => {
        this.search = text;
        this.load();
      },
    });
    this.list = h("ul", {
      class: "nav-list groups-list",
      role: "listbox",
      testid: "groups-list",
      "aria-label": "Groups",
      dataset: { list: "groups" },
    });
    this.error = h("p", { class: "pane-error", role: "alert", testid: "groups-error", hidden: true });
    this.empty = h("div", { class: "empty", testid: "groups-empty", hidden: true });
    this.root.append(
      h(
        "div",
        { class: "pane-head" },
        h("h2", { class: "pane-title", id: "groups-title" }, "Groups ", this.count),
        h(
          "button",
          {
            type: "button",
            class: "icon-button small",
            testid: "new-anywhere",
            "aria-label": "New item (in any group)",
            title: "New item (in any group)",
            onclick: () => this.ctx.items.newItem({ anyGroup: true }),
          },
          svg("svg", { viewBox: "0 0 20 20", width: "16", height: "16", "aria-hidden": "true" },
            svg("path", { d: "M10 4v12M4 10h12", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round" })),
        ),
      ),
      h("div", { class: "pane-tools" }, this.searchBox),
      this.error,
      h("div", { class: "pane-scroll" }, this.list, this.empty),
    );
  }

  onLoaded(fn) {
    this.listeners.push(fn);
  }

  async load({ quiet = false } = {}) {
    const seq = ++this.seq;
    if (!quiet && !this.loaded) this.root.setAttribute("aria-busy", "true");
    try {
      const data = await api.groups(this.search || undefined);
      if (seq !== this.seq) return;
      const groups = data.groups || [];
      const same =
        this.loaded && this.shownSearch === this.search && JSON.stringify(groups) === JSON.stringify(this.groups);
      this.shownSearch = this.search;
      this.groups = groups;
      this.loaded = true;
      this.error.hidden = true;
      if (!same) this.render(); // a poll that found nothing new leaves the list (and focus) be
      for (const fn of this.listeners) fn(this.groups, this.search);
    } catch (e) {
      if (seq !== this.seq) return;
      this.error.textContent = `Groups could not be listed: ${e.message}`;
      this.error.hidden = false;
    } finally {
      if (seq === this.seq) this.root.removeAttribute("aria-busy");
    }
  }

  find(name) {
    return this.groups.find((g) => g.group === name) || null;
  }

  render() {
    const focusedName = this.list.contains(document.activeElement)
      ? document.activeElement.__group
      : undefined;
    const rows = this.groups.map((g) => this.row(g));
    clear(this.list).append(...rows);
    this.count.textContent = this.groups.length ? formatCount(this.groups.length) : "";
    if (!this.groups.length) {
      this.empty.hidden = false;
      clear(this.empty).append(
        this.search
          ? h("p", {}, "No group matches ", h("q", {}, nameNode(this.search)), ".")
          : h(
              "div",
              {},
              h("p", { class: "empty-title", text: "No groups yet" }),
              h("p", { class: "muted", text: "Groups appear here as soon as an item is written to them." }),
              h("button", {
                type: "button",
                class: "button small empty-action",
                testid: "groups-empty-new",
                text: "New item",
                onclick: () => this.ctx.items.newItem({ anyGroup: true }),
              }),
            ),
      );
    } else this.empty.hidden = true;
    this.markSelected();
    if (focusedName !== undefined) {
      const row = rows.find((r) => r.__group === focusedName);
      if (row) row.focus();
    }
  }

  row(g) {
    const details = [`${formatCount(g.with_ttl)} with TTL`];
    if (g.bytes !== null && g.bytes !== undefined) details.push(formatBytes(g.bytes));
    const li = h(
      "li",
      {
        class: "group-row",
        role: "option",
        tabindex: "-1",
        testid: "group-row",
        dataset: { group: g.group },
        title: nameText(g.group),
        onclick: () => this.ctx.go({ group: g.group, key: null }),
      },
      h("div", { class: "group-line" }, nameNode(g.group), h("span", { class: "count", testid: "group-count", text: formatCount(g.items) })),
      h("div", { class: "group-details", text: details.join(" · ") }),
    );
    li.__group = g.group;
    li.setAttribute("aria-label", `${nameText(g.group)}: ${g.items} items`);
    return li;
  }

  select(name) {
    this.selected = name;
    this.markSelected();
  }

  markSelected() {
    markSelected(this.list, (li) => li.__group === this.selected);
  }

  focusSelected() {
    const row = [...this.list.children].find((li) => li.__group === this.selected) || this.list.firstElementChild;
    if (row) row.focus();
    return Boolean(row);
  }
}
