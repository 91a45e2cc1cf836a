// The items pane: one group's items, a page at a time (the server's cursor; never the whole
// group), with a key search done by the server, a sort by key, version or TTL done here on the
// rows loaded, and rows that follow the change feed in place.

import { api, checkJson, ApiError } from "./api.js";
import { h, clear, nameNode, nameText, formatCount, flash } from "./dom.js";
import { countdown } from "./clock.js";
import { openDialog, field } from "./dialogs.js";
import { parseFilter } from "./filter.js";
import { searchBox, markSelected } from "./listbox.js";

const PAGE = 50;
// Ops whose records say the item was removed (changes.GONE in the engine).
const GONE = new Set(["delete", "expire", "clear", "expire_group"]);
const SEARCH_PAGES = 10; // pages read in a row while a search finds fewer than a page
const PREVIEW_CHARS = 120;
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "variant" });

/** The row preview of an /api/item object, as the server writes it in /api/items: compact
 * JSON with ", " and ": ". Made from `raw` (pretty JSON: a line break is always structure,
 * never inside a string), so every digit stays as the server wrote it. */
export function previewOf(item) {
  let text = String(item.raw ?? "");
  if (item.editable !== false) {
    text = text
      .replace(/([[{])\n\s*/g, "$1")
      .replace(/\n\s*([\]}])/g, "$1")
      .replace(/,\n\s*/g, ", ");
  }
  return text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) + "…" : text;
}

/** A version the server could read (an item another tool named or wrote may come without). */
export function hasVersion(version) {
  return version !== null && version !== undefined;
}

function versionCell(version) {
  return hasVersion(version)
    ? h("span", { class: "col col-version", testid: "row-version", text: `v${version}` })
    : h("span", { class: "col col-version muted", testid: "row-version", title: "Its version cannot be read", text: "—" });
}

export class ItemsPane {
  constructor(ctx, root) {
    this.ctx = ctx;
    this.root = root;
    this.group = null;
    this.rows = new Map(); // key -> {data, el, receivedAt}
    this.order = []; // keys in the server's order (the order with no sort)
    this.cursor = null;
    this.search = "";
    this.filter = { text: "", where: null, orderBy: "", desc: false }; // the server's query
    this.sort = { by: null, desc: false };
    this.selectedKey = null;
    this.seq = 0;
    this.loading = false;
    this.build();
    this.showNoGroup();
  }

  build() {
    this.title = h("h2", { class: "pane-title", id: "items-title", testid: "items-title" });
    this.summary = h("p", { class: "pane-summary", testid: "items-summary" });
    this.newButton = h("button", {
      type: "button",
      class: "button small",
      testid: "new-item",
      text: "New item",
      onclick: () => this.newItem(),
    });
    this.clearButton = h("button", {
      type: "button",
      class: "button small danger-quiet",
      testid: "clear-group",
      text: "Clear group…",
      onclick: () => this.clearGroup(),
    });
    this.searchBox = searchBox({
      testid: "items-search",
      placeholder: "Search keys",
      label: "Search keys in this group",
      onSearch: (text) => {
        this.search = text;
        this.reload();
      },
    });
    this.filterToggle = h("button", {
      type: "button",
      class: "button small ghost filter-toggle",
      testid: "filter-toggle",
      "aria-expanded": "false",
      "aria-controls": "filter-form",
      text: "Filter",
      onclick: () => this.showFilter(this.filterForm.hidden),
    });
    this.filterInput = h("input", {
      type: "text",
      class: "input mono",
      testid: "filter-where",
      placeholder: "status eq paid; total > 100",
      "aria-label": "Filter on the values (PATH OP VALUE; several joined by ;)",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.orderInput = h("input", {
      type: "text",
      class: "input mono",
      testid: "filter-order",
      placeholder: "order by (path)",
      "aria-label": "Order by a value path",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.descBox = h("input", { type: "checkbox", testid: "filter-desc", id: "filter-desc" });
    this.filterError = h("p", { class: "form-error", role: "alert", testid: "filter-error", hidden: true });
    this.filterForm = h(
      "form",
      { class: "filter-form", id: "filter-form", testid: "filter-form", hidden: true, novalidate: true },
      h("div", { class: "filter-row" }, this.filterInput),
      h(
        "div",
        { class: "filter-row" },
        this.orderInput,
        h("label", { class: "check", for: "filter-desc" }, this.descBox, " descending"),
        h("button", { type: "submit", class: "button small primary", testid: "filter-apply", text: "Apply" }),
        h("button", { type: "button", class: "button small ghost", testid: "filter-clear", text: "Clear", onclick: () => this.clearFilter() }),
      ),
      this.filterError,
      h("p", { class: "hint" }, "PATH OP VALUE, conditions joined by ; (eq neq gt gte lt lte contains notContains startsWith endsWith in isNull isNotNull exists), or the JSON form. Judged by the server."),
    );
    this.filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.applyFilter();
    });
    this.sortButtons = {};
    const header = h(
      "div",
      { class: "items-header", role: "group", "aria-label": "Sort the rows" },
      ...[
        ["key", "Key"],
        [null, "Value"],
        ["version", "Version"],
        ["ttl", "TTL"],
      ].map(([by, label]) => {
        if (!by) return h("span", { class: "col col-preview", text: label });
        const button = h(
          "button",
          {
            type: "button",
            class: `col col-${by} sort`,
            testid: `sort-${by}`,
            onclick: () => this.toggleSort(by),
          },
          label,
          h("span", { class: "sort-mark", "aria-hidden": "true" }),
        );
        this.sortButtons[by] = button;
        return button;
      }),
    );
    this.list = h("ul", {
      class: "nav-list items-list",
      id: "items-list",
      role: "listbox",
      testid: "items-list",
      "aria-label": "Items",
      dataset: { list: "items" },
    });
    this.list.addEventListener("ttl-expired", (event) => {
      const li = event.target.closest("li");
      if (li && li.__key !== undefined) setTimeout(() => this.refreshRow(li.__key), 800);
    });
    this.more = h("button", {
      type: "button",
      class: "button more",
      testid: "items-more",
      text: "Load more",
      hidden: true,
      onclick: () => this.loadPage(),
    });
    this.status = h("p", { class: "list-status", testid: "items-status", "aria-live": "polite" });
    this.error = h("p", { class: "pane-error", role: "alert", testid: "items-error", hidden: true });
    this.empty = h("div", { class: "empty", testid: "items-empty", hidden: true });
    this.head = h(
      "div",
      { class: "pane-head" },
      h("div", { class: "pane-head-text" }, this.title, this.summary),
      h("div", { class: "pane-head-actions" }, this.newButton, this.clearButton),
    );
    this.tools = h("div", { class: "pane-tools" }, h("div", { class: "search-row" }, this.searchBox, this.filterToggle), this.filterForm);
    this.body = h("div", { class: "pane-scroll" }, header, this.list, this.empty, this.status, this.more);
    this.root.append(this.head, this.tools, this.error, this.body);
    // Infinite scroll: the "more" button loads the next page when it scrolls into view.
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && !this.loading && this.cursor !== null) this.loadPage();
      },
      { root: this.body, rootMargin: "200px" },
    );
    this.observer.observe(this.more);
  }

  showNoGroup() {
    this.group = null;
    this.head.hidden = true;
    this.tools.hidden = true;
    this.body.hidden = false;
    this.error.hidden = true;
    clear(this.list);
    this.rows.clear();
    this.more.hidden = true;
    this.status.textContent = "";
    this.empty.hidden = false;
    clear(this.empty).append(
      h("p", { class: "empty-title", text: "Choose a group" }),
      h("p", { class: "muted", text: "Its items are listed here, a page at a time." }),
    );
  }

  open(group) {
    if (group === null) return this.showNoGroup();
    if (group === this.group) return;
    this.group = group;
    this.search = "";
    this.searchBox.value = "";
    this.filter = { text: "", where: null, orderBy: "", desc: false };
    this.filterInput.value = "";
    this.orderInput.value = "";
    this.descBox.checked = false;
    this.filterError.hidden = true;
    this.markFilter();
    this.head.hidden = false;
    this.tools.hidden = false;
    clear(this.title).append(nameNode(group));
    this.title.title = nameText(group, 1000);
    this.updateSummary();
    this.reload();
  }

  showFilter(open) {
    this.filterForm.hidden = !open;
    this.filterToggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) this.filterInput.focus();
  }

  applyFilter() {
    let where;
    try {
      where = parseFilter(this.filterInput.value);
    } catch (e) {
      this.filterError.textContent = e.message;
      this.filterError.hidden = false;
      return;
    }
    this.filterError.hidden = true;
    this.filter = {
      text: this.filterInput.value.trim(),
      where,
      orderBy: this.orderInput.value.trim(),
      desc: this.descBox.checked,
    };
    this.markFilter();
    this.reload();
  }

  clearFilter() {
    this.filterInput.value = "";
    this.orderInput.value = "";
    this.descBox.checked = false;
    this.applyFilter();
  }

  get filtered() {
    return this.filter.where !== null || this.filter.orderBy !== "";
  }

  markFilter() {
    this.filterToggle.textContent = this.filtered ? "Filter ●" : "Filter";
    this.filterToggle.classList.toggle("active", this.filtered);
  }

  query(extra) {
    return {
      group: this.group,
      search: this.search || undefined,
      where: this.filter.where ?? undefined,
      order_by: this.filter.orderBy || undefined,
      desc: this.filter.orderBy && this.filter.desc ? 1 : undefined,
      ...extra,
    };
  }

  updateSummary() {
    if (this.group === null) return;
    const g = this.ctx.groups.find(this.group);
    this.summary.textContent = g
      ? `${formatCount(g.items)} item${g.items === 1 ? "" : "s"} · ${formatCount(g.with_ttl)} with TTL`
      : "";
  }

  reload() {
    this.seq++;
    this.rows.clear();
    this.order = [];
    this.cursor = null;
    this.loading = false;
    clear(this.list);
    this.error.hidden = true;
    this.empty.hidden = true;
    this.status.textContent = "";
    return this.loadPage({ first: true });
  }

  async loadPage({ first = false } = {}) {
    if (this.group === null || (this.loading && !first)) return;
    const seq = this.seq;
    const group = this.group;
    this.loading = true;
    this.more.disabled = true;
    this.status.textContent = "Loading…";
    let pages = 0;
    let added = 0;
    try {
      do {
        const data = await api.items(
          this.query({ group, limit: PAGE, cursor: first && pages === 0 ? undefined : this.cursor ?? undefined }),
        );
        if (seq !== this.seq) return;
        const receivedAt = Date.now();
        for (const item of data.items || []) {
          if (this.rows.has(item.key)) continue;
          this.order.push(item.key);
          this.rows.set(item.key, { data: item, el: null, receivedAt });
          added++;
        }
        this.cursor = data.cursor ?? null;
        pages++;
      } while ((this.search || this.filter.where) && this.cursor !== null && added < PAGE && pages < SEARCH_PAGES);
      this.error.hidden = true;
    } catch (e) {
      if (seq !== this.seq) return;
      this.error.textContent = `Items could not be listed: ${e.message}`;
      this.error.hidden = false;
    } finally {
      if (seq === this.seq) {
        this.loading = false;
        this.more.disabled = false;
      }
    }
    if (seq !== this.seq) return;
    this.render();
  }

  sorted() {
    const keys = [...this.order];
    const { by, desc } = this.sort;
    if (!by) return keys;
    const rows = this.rows;
    const sign = desc ? -1 : 1;
    const ttlOf = (k) => {
      const r = rows.get(k);
      return r.data.ttl_ms === null || r.data.ttl_ms === undefined ? Infinity : r.receivedAt + r.data.ttl_ms;
    };
    keys.sort((a, b) => {
      let c = 0;
      if (by === "key") c = collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
      else if (by === "version") c = (rows.get(a).data.version ?? 0) - (rows.get(b).data.version ?? 0);
      else if (by === "ttl") {
        const x = ttlOf(a);
        const y = ttlOf(b);
        c = x === y ? 0 : x < y ? -1 : 1;
      }
      return c * sign || collator.compare(a, b);
    });
    return keys;
  }

  toggleSort(by) {
    if (this.sort.by !== by) this.sort = { by, desc: false };
    else if (!this.sort.desc) this.sort = { by, desc: true };
    else this.sort = { by: null, desc: false };
    this.render();
  }

  render() {
    const focusedKey = this.list.contains(document.activeElement) ? document.activeElement.__key : undefined;
    const els = [];
    for (const key of this.sorted()) {
      const row = this.rows.get(key);
      if (!row.el) row.el = this.rowEl(row);
      els.push(row.el);
    }
    this.list.replaceChildren(...els);
    for (const [by, button] of Object.entries(this.sortButtons)) {
      const on = this.sort.by === by;
      button.setAttribute("aria-sort", on ? (this.sort.desc ? "descending" : "ascending") : "none");
      button.setAttribute("aria-label", `Sort by ${by}${on ? (this.sort.desc ? ", descending" : ", ascending") : ""}`);
      button.querySelector(".sort-mark").textContent = on ? (this.sort.desc ? "↓" : "↑") : "";
    }
    const n = this.rows.size;
    this.more.hidden = this.cursor === null;
    if (!n && this.cursor === null && this.error.hidden) {
      this.empty.hidden = false;
      clear(this.empty).append(
        this.search || this.filter.where
          ? h("p", {}, this.search ? ["No key matches ", h("q", {}, nameNode(this.search)), this.filter.where ? " with this filter." : "."] : "No item matches the filter.")
          : h(
              "div",
              {},
              h("p", { class: "empty-title", text: "This group is empty" }),
              h("p", { class: "muted", text: "Its items have been deleted or have expired." }),
            ),
      );
    } else this.empty.hidden = true;
    this.status.textContent = n
      ? `${formatCount(n)} loaded${this.cursor !== null ? ", more to load" : ""}${this.search ? " (search)" : ""}${this.filtered ? " (filtered)" : ""}`
      : this.cursor !== null
        ? "No match in the part searched so far."
        : "";
    this.markSelected();
    if (focusedKey !== undefined) {
      const row = this.rows.get(focusedKey);
      if (row && row.el) row.el.focus();
    }
  }

  rowEl(row) {
    const item = row.data;
    const li = h(
      "li",
      {
        class: "item-row",
        role: "option",
        tabindex: "-1",
        testid: "item-row",
        dataset: { key: item.key },
        title: nameText(item.key, 1000),
        onclick: () => this.ctx.go({ group: this.group, key: item.key }),
      },
      h("span", { class: "col col-key", testid: "row-key" }, nameNode(item.key)),
      h("span", { class: "col col-preview", testid: "row-preview", text: item.preview ?? "" }),
      versionCell(item.version),
      h("span", { class: "col col-ttl" }, countdown(item.ttl_ms, { testid: "row-ttl", receivedAt: row.receivedAt, none: "—" })),
    );
    li.__key = item.key;
    li.setAttribute("aria-label", `${nameText(item.key)}, ${hasVersion(item.version) ? `version ${item.version}` : "version unknown"}`);
    return li;
  }

  select(key) {
    this.selectedKey = key;
    this.markSelected();
  }

  markSelected() {
    markSelected(this.list, (li) => this.selectedKey !== null && li.__key === this.selectedKey);
  }

  focusSelected() {
    const row = (this.selectedKey !== null && this.rows.get(this.selectedKey)?.el) || this.list.firstElementChild;
    if (row && row.isConnected) row.focus();
    return Boolean(row);
  }

  /** A change from the feed (or a poll, or this page's own write) for this group. */
  applyChange(change) {
    if (this.group === null || change.group !== this.group) return;
    if (change.key === null || change.key === undefined) {
      this.reload();
      return;
    }
    // A removal's record may carry the version removed, the one the row shows: always look.
    this.refreshRow(change.key, { version: GONE.has(change.op) ? null : change.version });
  }

  matchesSearch(key) {
    return !this.search || key.toLowerCase().includes(this.search.toLowerCase());
  }

  /** Reads one key again: the row is updated in place (flashed), added, or dropped. */
  async refreshRow(key, { version = null } = {}) {
    if (this.group === null) return;
    const known = this.rows.get(key);
    if (known && version !== null && known.data.version === version) return; // already shown
    const seq = this.seq;
    const group = this.group;
    let item = null;
    try {
      item = await api.item(group, key);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) return;
    }
    if (seq !== this.seq) return;
    this.upsert(key, item);
  }

  /** Shows `item` (an /api/item object, or null: gone) as the row for `key`. */
  upsert(key, item) {
    const known = this.rows.get(key);
    if (item === null) {
      if (!known) return;
      const el = known.el;
      this.rows.delete(key);
      this.order = this.order.filter((k) => k !== key);
      if (el && el.isConnected) {
        el.classList.add("leaving");
        setTimeout(() => {
          if (!this.rows.has(key)) this.render();
        }, 400);
      } else this.render();
      return;
    }
    // A new key shows only where the page can tell it belongs: a filter is the server's to judge.
    if (!known && (!this.matchesSearch(key) || this.filter.where !== null)) return;
    const row = {
      data: {
        key,
        preview: previewOf(item),
        version: item.version,
        expires_at: item.expires_at,
        ttl_ms: item.ttl_ms,
      },
      el: null,
      receivedAt: Date.now(),
    };
    if (!known) this.order.unshift(key);
    this.rows.set(key, row);
    this.render();
    flash(row.el);
  }

  /** Poll backends: reads again as many rows as are shown and reconciles them. */
  async poll() {
    if (this.group === null || this.loading) return;
    const seq = this.seq;
    const group = this.group;
    const limit = Math.min(500, Math.max(PAGE, this.rows.size));
    let data;
    try {
      data = await api.items(this.query({ group, limit }));
    } catch {
      return;
    }
    if (seq !== this.seq || this.loading) return;
    const receivedAt = Date.now();
    const seen = new Set();
    const changed = [];
    for (const item of data.items || []) {
      seen.add(item.key);
      const known = this.rows.get(item.key);
      if (
        known &&
        known.data.version === item.version &&
        known.data.expires_at === item.expires_at &&
        known.data.preview === item.preview
      ) {
        continue;
      }
      if (!known) this.order.unshift(item.key);
      this.rows.set(item.key, { data: item, el: null, receivedAt });
      changed.push(item.key);
    }
    // Rows the fresh read covered (the whole group when it has no cursor) that are gone.
    if (data.cursor === null) {
      for (const key of [...this.rows.keys()]) {
        if (!seen.has(key)) {
          this.rows.delete(key);
          this.order = this.order.filter((k) => k !== key);
          changed.push(null);
        }
      }
      this.cursor = null;
    }
    if (!changed.length) return;
    this.render();
    for (const key of changed) if (key !== null) flash(this.rows.get(key)?.el);
  }

  /** The new-item dialog; `anyGroup` asks for the group too (from the groups pane). */
  newItem({ anyGroup = false } = {}) {
    const fixed = anyGroup ? null : this.group;
    const groupInput = h("input", { type: "text", class: "input mono", testid: "new-group", autocomplete: "off", spellcheck: "false" });
    if (this.group !== null) groupInput.value = this.group;
    const keyInput = h("input", { type: "text", class: "input mono", testid: "new-key", autocomplete: "off", spellcheck: "false" });
    const valueInput = h("textarea", { class: "input mono", rows: "8", testid: "new-value", spellcheck: "false" });
    valueInput.value = "{\n  \n}";
    const ttlInput = h("input", { type: "number", class: "input", min: "0", step: "any", testid: "new-ttl", placeholder: "none" });
    openDialog({
      title: "New item",
      testid: "new-dialog",
      wide: true,
      body: [
        fixed === null
          ? field("Group", groupInput, "A group exists as soon as it holds an item.")
          : h("p", { class: "muted" }, "In ", nameNode(fixed), ". Written only if the key is free (version 0)."),
        field("Key", keyInput),
        field("Value (JSON)", valueInput),
        field("Expires after (seconds, optional)", ttlInput),
      ],
      initial: fixed === null && !groupInput.value ? groupInput : keyInput,
      actions: [
        {
          label: "Create",
          kind: "primary",
          testid: "new-create",
          submit: true,
          run: async () => {
            const group = fixed ?? groupInput.value;
            const key = keyInput.value;
            if (!group) throw new Error("Give the group a name.");
            if (!key) throw new Error("Give the item a key.");
            const checked = checkJson(valueInput.value);
            if (checked.error) throw new Error(checked.error);
            let ttl = null;
            if (ttlInput.value !== "") {
              ttl = Number(ttlInput.value);
              if (!(ttl > 0)) throw new Error("The expiry must be a number of seconds above 0, or empty for none.");
            }
            try {
              const { item } = await api.put(group, key, valueInput.value, 0, ttl);
              this.ctx.written(item);
              this.ctx.go({ group, key });
            } catch (e) {
              if (e instanceof ApiError && e.status === 409) {
                throw new Error(
                  `An item with this key already exists (version ${e.current?.version ?? "?"}). Open it to edit it.`,
                );
              }
              throw e;
            }
          },
        },
      ],
    });
  }

  clearGroup() {
    const group = this.group;
    const g = this.ctx.groups.find(group);
    const input = h("input", {
      type: "text",
      class: "input mono",
      testid: "clear-input",
      autocomplete: "off",
      spellcheck: "false",
      "aria-label": "Type the group name to confirm",
    });
    const d = openDialog({
      title: "Clear this group?",
      testid: "clear-dialog",
      body: [
        h(
          "p",
          {},
          "This deletes ",
          h("strong", { text: g ? `all ${formatCount(g.items)} items` : "every item" }),
          " of the group ",
          h("strong", {}, nameNode(group)),
          ". It cannot be undone.",
        ),
        field("Type the group name to confirm", input),
      ],
      initial: input,
      actions: [
        {
          label: "Clear group",
          kind: "danger",
          testid: "clear-confirm",
          submit: true,
          disabled: true,
          run: async () => {
            if (input.value !== group) throw new Error("The name typed is not the group's name.");
            const { removed } = await api.clear(group, input.value);
            this.ctx.toast(`Removed ${formatCount(removed)} item${removed === 1 ? "" : "s"} from the group.`);
            this.ctx.cleared(group);
          },
        },
      ],
    });
    const button = d.buttons[0];
    input.addEventListener("input", () => (button.disabled = input.value !== group));
  }
}
