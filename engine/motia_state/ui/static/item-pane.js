// The item pane: one item's value (a JSON tree, or its raw text), version, expiry and history,
// and every write the inspector offers. Edits are compare-and-set on the version opened; a
// write from elsewhere never replaces text being edited: it raises a notice instead.

import { api, stringify, checkJson, ApiError } from "./api.js";
import { h, svg, clear, nameNode, nameText, formatBytes, flash } from "./dom.js";
import { countdown, when, msLeft } from "./clock.js";
import { openDialog, confirmDialog, field } from "./dialogs.js";
import { renderTree } from "./tree.js";
import { renderSideBySide } from "./diff.js";
import { hasVersion } from "./items-pane.js";

const HISTORY_PAGE = 20;
// Ops whose records say the item was removed (changes.GONE in the engine).
const GONE = new Set(["delete", "expire", "clear", "expire_group"]);

function versionText(version) {
  return hasVersion(version) ? String(version) : "unknown (it cannot be read)";
}

function pretty(value) {
  return value === undefined ? "" : stringify(value, 2);
}

export class ItemPane {
  constructor(ctx, root) {
    this.ctx = ctx;
    this.root = root;
    this.group = null;
    this.key = null;
    this.item = null;
    this.receivedAt = 0;
    this.state = "empty"; // empty | loading | view | gone | error
    this.errorText = "";
    this.tab = "tree";
    this.edit = null; // {baseVersion, baseRaw, saving, textarea, error, keepTtl}
    this.compare = null; // {kind: "save"|"changed"|"delete", current, opened}
    this.notice = null; // {version, gone}
    this.history = { entries: [], cursor: null, error: "", recordValues: true, open: new Set(), loading: false };
    this.seq = 0;
    this.build();
    this.render();
  }

  build() {
    this.headEl = h("div", { class: "item-head" });
    this.actionsEl = h("div", { class: "item-actions", role: "toolbar", "aria-label": "Item actions" });
    this.noticeEl = h("div", { class: "notice-area" });
    this.mainEl = h("div", { class: "item-main" });
    this.historyEl = h("section", { class: "history", testid: "history", "aria-labelledby": "history-title" });
    this.root.append(
      this.headEl,
      this.actionsEl,
      this.noticeEl,
      h("div", { class: "pane-scroll item-scroll" }, this.mainEl, this.historyEl),
    );
    this.root.addEventListener("ttl-expired", (event) => {
      if (event.target.dataset.testid === "item-ttl") setTimeout(() => this.refresh({ flashIt: true }), 800);
    });
  }

  get editing() {
    return this.edit !== null;
  }

  /** True while the editor holds text that differs from what it started from. */
  get dirty() {
    return this.edit !== null && this.edit.textarea.value !== this.edit.baseRaw;
  }

  open(group, key) {
    if (group === this.group && key === this.key && this.state !== "empty") return;
    this.seq++;
    this.group = group;
    this.key = key;
    this.item = null;
    this.edit = null;
    this.compare = null;
    this.notice = null;
    this.history = { entries: [], cursor: null, error: "", recordValues: true, open: new Set(), loading: false };
    if (key === null) {
      this.state = "empty";
      this.render();
      return;
    }
    this.state = "loading";
    this.render();
    this.load();
  }

  async load() {
    const seq = this.seq;
    try {
      const item = await api.item(this.group, this.key);
      if (seq !== this.seq) return;
      this.setItem(item);
      this.state = "view";
    } catch (e) {
      if (seq !== this.seq) return;
      this.item = null;
      this.state = e instanceof ApiError && e.status === 404 ? "gone" : "error";
      this.errorText = e.message;
    }
    this.render();
    this.loadHistory();
  }

  /** Reads the item again after an error (a server that did not answer, now back). */
  retry() {
    if (this.key === null || this.state !== "error") return;
    this.seq++;
    this.state = "loading";
    this.render();
    this.load();
  }

  setItem(item) {
    this.item = item;
    this.receivedAt = Date.now();
  }

  /**
   * Reads the item again after a change from elsewhere (the feed, a poll, an expiry). Without an
   * edit the pane shows the new state; with one, the editor is left alone and a notice says
   * what changed.
   */
  async refresh({ flashIt = true } = {}) {
    if (this.key === null || this.state === "loading") return;
    if (this.edit && this.edit.saving) return;
    const seq = this.seq;
    let item = null;
    try {
      item = await api.item(this.group, this.key);
    } catch (e) {
      if (seq !== this.seq) return;
      if (!(e instanceof ApiError && e.status === 404)) return;
    }
    if (seq !== this.seq || (this.edit && this.edit.saving)) return;
    const before = this.item;
    // the text too: another tool's write (no feed record, found by a read-again) keeps the version
    const same =
      before &&
      item &&
      before.version === item.version &&
      before.expires_at === item.expires_at &&
      before.raw === item.raw;
    if (this.edit) {
      if (item) this.setItem(item);
      if (!item) {
        this.notice = { gone: true, version: null };
      } else if (item.version !== this.edit.baseVersion) {
        if (!this.notice || this.notice.version !== item.version) this.notice = { gone: false, version: item.version };
      }
      this.renderHead();
      this.renderNotice();
      if (!same) this.loadHistory();
      return;
    }
    if (same && this.state === "view") {
      this.setItem(item);
      return;
    }
    if (item) {
      this.setItem(item);
      this.state = "view";
    } else {
      this.state = "gone";
      this.errorText = "";
    }
    this.compare = null;
    this.render();
    if (flashIt) flash(this.headEl);
    this.loadHistory();
  }

  applyChange(change) {
    if (this.key === null || change.group !== this.group) return;
    if (change.key !== null && change.key !== undefined && change.key !== this.key) return;
    this.refresh();
  }

  // ---- rendering -------------------------------------------------------------------------

  render() {
    this.renderHead();
    this.renderActions();
    this.renderNotice();
    this.renderMain();
    this.renderHistory();
  }

  renderHead() {
    clear(this.headEl);
    if (this.key === null) return;
    const copy = h(
      "button",
      {
        type: "button",
        class: "icon-button small",
        testid: "copy-key",
        "aria-label": "Copy the key",
        title: "Copy the key",
        onclick: () => this.copyKey(),
      },
      svg(
        "svg",
        { viewBox: "0 0 20 20", width: "16", height: "16", "aria-hidden": "true" },
        svg("rect", { x: "6", y: "6", width: "10", height: "11", rx: "2", fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
        svg("path", { d: "M4 13V4.5A1.5 1.5 0 0 1 5.5 3H13", fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
      ),
    );
    const title = h(
      "h2",
      { class: "item-key", id: "item-title", testid: "item-key", title: nameText(this.key, 1000) },
      nameNode(this.key),
    );
    const crumbs = h(
      "div",
      { class: "item-crumbs" },
      h("span", { class: "muted", text: "in " }),
      h("a", {
        href: "#",
        class: "crumb",
        testid: "item-group",
        onclick: (e) => {
          e.preventDefault();
          this.ctx.go({ group: this.group, key: null });
        },
      }, nameNode(this.group)),
    );
    const meta = h("div", { class: "item-meta" });
    if (this.item) {
      const shownVersion = this.edit ? this.edit.baseVersion : this.item.version;
      const known = hasVersion(shownVersion);
      meta.append(
        h(
          "span",
          { class: "chip", title: known ? undefined : "Its version cannot be read" },
          h("span", { class: "chip-label", text: "version" }),
          h("span", { testid: "item-version", text: known ? String(shownVersion) : "—" }),
        ),
        this.item.ttl_ms === null
          ? h("span", { class: "chip" }, countdown(null, { testid: "item-ttl" }))
          : h(
              "span",
              { class: "chip" },
              h("span", { class: "chip-label", text: "expires in" }),
              countdown(this.item.ttl_ms, { testid: "item-ttl", receivedAt: this.receivedAt }),
            ),
        h("span", { class: "chip" }, h("span", { class: "chip-label", text: "size" }), h("span", { testid: "item-bytes", text: formatBytes(this.item.bytes) })),
      );
      if (this.item.editable === false) meta.append(h("span", { class: "chip warn", text: "not JSON: read only" }));
    }
    this.headEl.append(h("div", { class: "item-title-row" }, title, copy), crumbs, meta);
  }

  async copyKey() {
    try {
      await navigator.clipboard.writeText(this.key);
      this.ctx.toast("Key copied.");
    } catch {
      this.ctx.toast("The browser refused the clipboard; select the key to copy it.", "error");
    }
  }

  renderActions() {
    clear(this.actionsEl);
    // A conflict is settled by its own buttons: the usual ones stay out of the way meanwhile.
    this.actionsEl.hidden = this.compare !== null || (!(this.item && this.state === "view") && !this.edit);
    if (this.actionsEl.hidden) return;
    if (this.edit) {
      const saving = this.edit.saving;
      this.actionsEl.append(
        h("button", { type: "button", class: "button primary", testid: "save-button", disabled: saving, title: "Save (Ctrl+S)", text: saving ? "Saving…" : "Save", onclick: () => this.save() }),
        h("button", { type: "button", class: "button", testid: "format-button", disabled: saving, text: "Format", onclick: () => this.format() }),
        h("button", { type: "button", class: "button ghost", testid: "cancel-edit", disabled: saving, title: "Cancel (Esc)", text: "Cancel", onclick: () => this.cancelEdit() }),
        h("span", { class: "actions-hint", text: `Saves only if the item is still version ${this.edit.baseVersion}.` }),
      );
      return;
    }
    const editable = this.item.editable !== false;
    const versioned = hasVersion(this.item.version);
    if (editable) {
      this.actionsEl.append(
        h("button", { type: "button", class: "button primary", testid: "edit-button", title: "Edit as JSON (e)", text: "Edit", onclick: () => this.startEdit() }),
        h("button", { type: "button", class: "button", testid: "increment-button", text: "Increment…", onclick: () => this.incrementDialog() }),
        h("button", { type: "button", class: "button", testid: "update-button", text: "Update ops…", onclick: () => this.updateDialog() }),
      );
    }
    this.actionsEl.append(
      h("button", { type: "button", class: "button", testid: "ttl-button", text: "Expiry…", onclick: () => this.ttlDialog() }),
      h("span", { class: "spacer" }),
    );
    if (versioned) {
      this.actionsEl.append(
        h("button", { type: "button", class: "button danger-quiet", testid: "delete-button", text: "Delete…", onclick: () => this.deleteDialog() }),
      );
    }
    if (!editable || !versioned) {
      const notes = [];
      if (!editable) {
        notes.push("Read only: the value is not JSON the page can show exactly (another codec or tool wrote it), so it is not edited here.");
      }
      notes.push(
        versioned
          ? "It can be given an expiry or deleted."
          : "Its version cannot be read, and a delete names the version it removes, so it cannot be deleted here; it can be given an expiry.",
      );
      this.actionsEl.append(h("p", { class: "read-only-note muted small", testid: "read-only-note", text: notes.join(" ") }));
    }
  }

  renderNotice() {
    clear(this.noticeEl);
    if (!this.notice || !this.edit || this.compare) return;
    const text = this.notice.gone
      ? "This item was deleted (or expired) while you were editing."
      : `This item changed (version ${this.notice.version}) while you were editing.`;
    this.noticeEl.append(
      h(
        "div",
        { class: "notice", role: "status", testid: "changed-notice" },
        h("span", { text }),
        h("span", { class: "notice-actions" },
          h("button", { type: "button", class: "button small", testid: "notice-show", text: "Show it", onclick: () => this.showChanged() }),
          h("button", { type: "button", class: "button small ghost", testid: "notice-keep", text: "Keep editing", onclick: () => this.keepEditing() }),
        ),
      ),
    );
  }

  renderMain() {
    clear(this.mainEl);
    if (this.state === "empty") {
      this.mainEl.append(
        h("div", { class: "empty", testid: "item-empty" },
          h("p", { class: "empty-title", text: this.group === null ? "motia-state inspector" : "Choose an item" }),
          h("p", { class: "muted", text: this.group === null
            ? "Pick a group on the left, then an item, to see its value, its history and every change as it happens."
            : "Its value, version, expiry and history show here." }),
          h("p", { class: "muted small" }, "Press ", h("kbd", { text: "?" }), " for the keyboard shortcuts."),
        ),
      );
      return;
    }
    if (this.state === "loading") {
      this.mainEl.append(h("p", { class: "muted loading", text: "Loading…" }));
      return;
    }
    if (this.state === "gone" && !this.edit) {
      this.mainEl.append(
        h("div", { class: "empty", testid: "item-gone" },
          h("p", { class: "empty-title", text: "No such item" }),
          h("p", { class: "muted", text: "It does not exist: it was deleted, it expired, or it never was." }),
        ),
      );
      return;
    }
    if (this.state === "error" && !this.edit) {
      this.mainEl.append(
        h("p", { class: "pane-error", role: "alert", testid: "item-error", text: this.errorText }),
        h("button", { type: "button", class: "button small retry", testid: "item-retry", text: "Try again", onclick: () => this.retry() }),
      );
      return;
    }
    if (this.compare) {
      this.mainEl.append(this.compareView());
      if (this.edit) {
        this.edit.wrap.hidden = true;
        this.mainEl.append(this.edit.wrap);
      }
      return;
    }
    if (this.edit) {
      this.edit.wrap.hidden = false;
      this.mainEl.append(this.edit.wrap);
      return;
    }
    this.mainEl.append(this.valueView());
  }

  valueView() {
    const item = this.item;
    const tabs = [
      ["tree", "Tree"],
      ["raw", "Raw"],
    ];
    const panel = h("div", { class: "tab-panel", role: "tabpanel", id: "value-panel" });
    const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "How to show the value" });
    const buttons = tabs.map(([id, label]) =>
      h("button", {
        type: "button",
        role: "tab",
        class: "tab",
        id: `tab-${id}`,
        testid: `tab-${id}`,
        "aria-selected": this.tab === id ? "true" : "false",
        "aria-controls": "value-panel",
        tabindex: this.tab === id ? "0" : "-1",
        text: label,
        onclick: () => {
          this.tab = id;
          this.renderMain();
          this.mainEl.querySelector(`#tab-${id}`)?.focus();
        },
      }),
    );
    tablist.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      event.preventDefault();
      event.stopPropagation();
      const i = tabs.findIndex(([id]) => id === this.tab);
      buttons[(i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length].click();
    });
    tablist.append(...buttons);
    panel.setAttribute("aria-labelledby", `tab-${this.tab}`);
    if (this.tab === "raw" || item.editable === false) {
      if (item.editable === false && this.tab === "tree") {
        panel.append(h("p", { class: "muted small", text: "This value is not JSON; its representation:" }));
      }
      panel.append(h("pre", { class: "raw", testid: "item-raw", tabindex: "0", text: item.raw }));
    } else {
      let tree;
      try {
        tree = renderTree(item.value, { collapsedDepth: 3 });
      } catch (e) {
        tree = h("pre", { class: "raw", text: item.raw });
      }
      panel.append(h("div", { class: "tree-wrap", testid: "item-tree" }, tree));
    }
    return h("div", { class: "value-view" }, tablist, panel);
  }

  // ---- editing ---------------------------------------------------------------------------

  startEdit() {
    if (!this.item || this.item.editable === false || this.edit || this.state !== "view") return;
    const textarea = h("textarea", {
      class: "editor mono",
      testid: "editor",
      spellcheck: "false",
      autocapitalize: "off",
      autocomplete: "off",
      "aria-label": "The value as JSON",
      rows: String(Math.min(30, Math.max(8, this.item.raw.split("\n").length + 2))),
    });
    textarea.value = this.item.raw;
    const error = h("p", { class: "form-error", role: "alert", testid: "edit-error", hidden: true });
    const keep = h("input", { type: "checkbox", testid: "keep-ttl", checked: true, id: "keep-ttl" });
    const keepRow =
      this.item.ttl_ms !== null
        ? h("label", { class: "check", for: "keep-ttl" }, keep, " Keep its expiry (a save without it makes the item permanent)")
        : null;
    textarea.addEventListener("input", () => {
      if (!error.hidden) {
        error.hidden = true;
        textarea.removeAttribute("aria-invalid");
      }
    });
    const wrap = h("div", { class: "edit-wrap", testid: "edit-wrap" }, textarea, error, keepRow);
    this.edit = { baseVersion: this.item.version, baseRaw: this.item.raw, saving: false, textarea, error, keep: keepRow ? keep : null, wrap };
    this.compare = null;
    this.notice = null;
    this.render();
    textarea.focus();
    textarea.setSelectionRange(0, 0);
    textarea.scrollTop = 0;
  }

  showEditError(message) {
    this.edit.error.textContent = message;
    this.edit.error.hidden = false;
    this.edit.textarea.setAttribute("aria-invalid", "true");
  }

  format() {
    if (!this.edit) return;
    const checked = checkJson(this.edit.textarea.value);
    if (checked.error) return this.showEditError(checked.error);
    this.edit.textarea.value = stringify(checked.value, 2);
  }

  /** Leaves the editor. With unsaved text, asks first (resolves false when the user stays). */
  async cancelEdit({ ask = true } = {}) {
    if (!this.edit) return true;
    if (ask && this.dirty) {
      const ok = await confirmDialog({
        title: "Discard your changes?",
        message: "The text you edited has not been saved.",
        confirm: "Discard",
        kind: "danger",
        testid: "discard-dialog",
      });
      if (!ok) return false;
    }
    this.edit = null;
    this.compare = null;
    this.notice = null;
    if (this.state !== "view" && this.item) this.state = "view";
    this.render();
    return true;
  }

  ttlToKeep() {
    if (!this.edit.keep || !this.edit.keep.checked) return null;
    const left = msLeft(this.headEl.querySelector('[data-testid="item-ttl"]'));
    if (left === null) return null;
    return Math.max(0.001, left / 1000);
  }

  async save() {
    if (!this.edit || this.edit.saving || this.compare) return; // a conflict is settled by its buttons
    const text = this.edit.textarea.value;
    const checked = checkJson(text);
    if (checked.error) {
      this.showEditError(checked.error);
      this.edit.textarea.focus();
      return;
    }
    await this.write(text, this.edit.baseVersion);
  }

  /** PUT the editor's text on `version`; a 409 opens the side-by-side conflict view. */
  async write(text, version) {
    const edit = this.edit;
    edit.saving = true;
    this.renderActions();
    try {
      const { item } = await api.put(this.group, this.key, text, version, this.ttlToKeep());
      if (this.edit !== edit) return;
      this.edit = null;
      this.compare = null;
      this.notice = null;
      if (!item) {
        this.state = "gone"; // saved, and expired before it could be read back
        this.render();
        return;
      }
      this.setItem(item);
      this.state = "view";
      this.render();
      this.ctx.toast(`Saved: version ${item.version}.`);
      this.ctx.written(item);
      this.loadHistory();
      this.actionsEl.querySelector('[data-testid="edit-button"]')?.focus();
    } catch (e) {
      if (this.edit !== edit) return;
      edit.saving = false;
      if (e instanceof ApiError && e.status === 409) {
        this.compare = { kind: "save", current: e.current ?? null };
        if (e.current) this.setItem(e.current);
        this.render();
        this.mainEl.querySelector('[data-testid="conflict"] button')?.focus();
      } else {
        this.renderActions();
        this.renderMain();
        this.showEditError(e.message);
      }
    }
  }

  showChanged() {
    this.compare = { kind: "changed", current: this.notice && this.notice.gone ? null : this.item };
    this.notice = null;
    this.render();
    this.mainEl.querySelector('[data-testid="conflict"] button')?.focus();
  }

  keepEditing() {
    this.notice = null;
    this.renderNotice();
    this.edit?.textarea.focus();
  }

  compareView() {
    const { kind, current } = this.compare;
    const theirsText = current ? current.raw : "";
    let title;
    let explain;
    if (kind === "delete") {
      title = current ? "It changed since you opened it" : "It is already gone";
      explain = current
        ? `You opened version ${this.compare.openedVersion}; it is version ${versionText(current.version)} now. Nothing was deleted.`
        : "Another writer deleted it (or it expired) before you did.";
    } else if (kind === "save") {
      title = current ? "Someone else changed this item" : "This item was deleted while you edited it";
      explain = current
        ? `You edited version ${this.edit.baseVersion}; it is version ${versionText(current.version)} now. Nothing was saved.`
        : "Nothing was saved. You can save your text as a new item.";
    } else {
      title = current ? "This item changed while you were editing" : "This item was deleted while you were editing";
      explain = current
        ? `You are editing version ${this.edit.baseVersion}; it is version ${versionText(current.version)} now.`
        : "Your text is kept; you can save it as a new item.";
    }
    let mine = kind === "delete" ? this.compare.openedRaw : this.edit.textarea.value;
    if (kind !== "delete") {
      // Compared as the server prints JSON, so layout alone never shows as a change; what an
      // overwrite sends is still the text as typed.
      const parsed = checkJson(mine);
      if (!parsed.error) mine = pretty(parsed.value);
    }
    const view = h(
      "div",
      { class: "conflict", testid: "conflict", role: "region", "aria-label": title },
      h("h3", { class: "conflict-title", text: title }),
      h("p", { class: "muted", text: explain }),
      h("div", { class: "conflict-actions" }),
      h(
        "div",
        { class: "conflict-diff", testid: "conflict-diff" },
        renderSideBySide(mine, theirsText, {
          aLabel: kind === "delete" ? `What you opened (version ${this.compare.openedVersion})` : "Yours (not saved)",
          bLabel: current ? `Theirs (version ${versionText(current.version)})` : "Theirs (deleted)",
        }),
      ),
    );
    const actions = view.querySelector(".conflict-actions");
    actions.append(
      h("button", { type: "button", class: "button", testid: "conflict-reload", text: current ? "Reload theirs" : "Discard mine", onclick: () => this.reloadTheirs() }),
    );
    if (kind === "delete") {
      if (current && hasVersion(current.version)) {
        actions.append(h("button", { type: "button", class: "button danger", testid: "conflict-delete", text: "Delete anyway", onclick: () => this.deleteNow(current.version) }));
      }
    } else {
      actions.append(
        h("button", {
          type: "button",
          class: "button primary",
          testid: "conflict-overwrite",
          text: current ? "Overwrite with mine" : "Save mine as new",
          onclick: () => this.overwrite(),
        }),
        h("button", { type: "button", class: "button ghost", testid: "conflict-keep", text: "Keep editing", onclick: () => this.backToEditor() }),
      );
    }
    return view;
  }

  reloadTheirs() {
    const current = this.compare ? this.compare.current : null;
    this.edit = null;
    this.compare = null;
    this.notice = null;
    if (current) {
      this.setItem(current);
      this.state = "view";
    } else {
      this.state = "gone";
    }
    this.render();
    this.loadHistory();
    if (current) this.ctx.written(current);
  }

  async overwrite() {
    if (!this.edit) return;
    const text = this.edit.textarea.value;
    const checked = checkJson(text);
    if (checked.error) {
      this.compare = null;
      this.render();
      this.showEditError(checked.error);
      return;
    }
    const version = this.compare.current ? this.compare.current.version : 0;
    await this.write(text, version);
  }

  /** Back to the editor, now against the version just seen: the next save replaces it. */
  backToEditor() {
    if (!this.edit) return;
    const current = this.compare ? this.compare.current : null;
    this.edit.baseVersion = current ? current.version : 0;
    this.compare = null;
    this.notice = null;
    this.render();
    this.edit.textarea.focus();
  }

  // ---- the other writes ------------------------------------------------------------------

  afterWrite(item, message) {
    if (!item) {
      this.state = "gone";
      this.item = null;
      this.render();
      return;
    }
    this.setItem(item);
    this.state = "view";
    this.render();
    flash(this.headEl);
    this.ctx.toast(message);
    this.ctx.written(item);
    this.loadHistory();
  }

  incrementDialog() {
    const by = h("input", { type: "number", class: "input", step: "any", value: "1", testid: "increment-by" });
    const only = h("input", { type: "checkbox", testid: "increment-cas" });
    const version = this.item.version;
    openDialog({
      title: "Increment",
      testid: "increment-dialog",
      body: [
        h("p", { class: "muted", text: "Adds a number to the value (a number). A negative number subtracts." }),
        field("By", by),
        h("label", { class: "check" }, only, ` Only if it is still version ${version}`),
      ],
      initial: by,
      actions: [
        {
          label: "Increment",
          kind: "primary",
          testid: "increment-submit",
          submit: true,
          run: async () => {
            const n = Number(by.value);
            if (by.value.trim() === "" || !Number.isFinite(n)) throw new Error("Give a number to add.");
            const { item } = await api.increment(this.group, this.key, n, only.checked ? version : null);
            this.afterWrite(item, `Incremented: version ${item.version}.`);
          },
        },
      ],
    });
  }

  updateDialog() {
    const ops = h("textarea", { class: "input mono", rows: "7", testid: "update-ops", spellcheck: "false" });
    ops.value = '[\n  {"type": "set", "path": "status", "value": "paid"}\n]';
    const only = h("input", { type: "checkbox", testid: "update-cas", checked: true });
    const version = this.item.version;
    openDialog({
      title: "Update with operations",
      testid: "update-dialog",
      wide: true,
      body: [
        h(
          "p",
          { class: "muted" },
          "A JSON list of operations, applied together: ",
          h("code", { text: "set" }), ", ", h("code", { text: "merge" }), ", ", h("code", { text: "append" }),
          " (path, value), ", h("code", { text: "increment" }), ", ", h("code", { text: "decrement" }),
          " (path, by), ", h("code", { text: "remove" }), " (path). An empty path is the whole value.",
        ),
        field("Operations", ops),
        h("label", { class: "check" }, only, ` Only if it is still version ${version}`),
      ],
      initial: ops,
      actions: [
        {
          label: "Apply",
          kind: "primary",
          testid: "update-submit",
          submit: false,
          run: async () => {
            const checked = checkJson(ops.value);
            if (checked.error) throw new Error(checked.error);
            if (!Array.isArray(checked.value)) throw new Error("The operations must be a JSON list: [ {...}, ... ].");
            try {
              const { item } = await api.update(this.group, this.key, ops.value, only.checked ? version : null);
              this.afterWrite(item, `Updated: version ${item.version}.`);
            } catch (e) {
              if (e instanceof ApiError && e.status === 409) {
                throw new Error(
                  e.current
                    ? `It changed since you opened it (now version ${e.current.version}); nothing was applied. Untick the box to apply to the current value.`
                    : "It was deleted since you opened it; nothing was applied.",
                );
              }
              throw e;
            }
          },
        },
      ],
    });
  }

  ttlDialog() {
    const seconds = h("input", { type: "number", class: "input", min: "0", step: "any", testid: "ttl-seconds", placeholder: "seconds" });
    const left = msLeft(this.headEl.querySelector('[data-testid="item-ttl"]'));
    const now =
      left === null ? "It has no expiry." : `It expires in about ${Math.max(0, Math.round(left / 1000))} s.`;
    openDialog({
      title: "Expiry",
      testid: "ttl-dialog",
      body: [h("p", { class: "muted", text: `${now} Setting an expiry does not change the version.` }), field("Expire after (seconds)", seconds)],
      initial: seconds,
      actions: [
        {
          label: "Remove expiry",
          kind: "ghost",
          testid: "ttl-clear",
          disabled: left === null,
          run: async () => {
            const { item } = await api.ttl(this.group, this.key, null);
            this.afterWrite(item, "The item no longer expires.");
          },
        },
        {
          label: "Set expiry",
          kind: "primary",
          testid: "ttl-submit",
          submit: true,
          run: async () => {
            const n = Number(seconds.value);
            if (seconds.value.trim() === "" || !(n > 0) || !Number.isFinite(n)) {
              throw new Error("Give a number of seconds above 0 (or remove the expiry).");
            }
            const { item, changed } = await api.ttl(this.group, this.key, n);
            if (!changed && !item) throw new Error("The item does not exist any more.");
            if (item) this.afterWrite(item, `Expires in ${n} s.`);
          },
        },
      ],
    });
  }

  async deleteDialog() {
    const opened = this.item; // what the user saw when asked, even if a change lands meanwhile
    const version = opened.version;
    const ok = await confirmDialog({
      title: "Delete this item?",
      message: [
        h("p", {}, "Deletes ", h("strong", {}, nameNode(this.key)), " from ", h("strong", {}, nameNode(this.group)), "."),
        h("p", { class: "muted", text: `Only if it is still version ${version}. This cannot be undone.` }),
      ],
      confirm: "Delete",
      kind: "danger",
      testid: "delete-dialog",
    });
    if (!ok || this.item === null) return;
    await this.deleteNow(version, { openedVersion: version, openedRaw: opened.raw });
  }

  async deleteNow(version, opened = this.compare) {
    try {
      const { deleted } = await api.remove(this.group, this.key, version);
      this.compare = null;
      this.state = "gone";
      this.item = null;
      this.render();
      this.ctx.toast(deleted ? "Deleted." : "It was already gone.");
      this.ctx.deleted(this.group, this.key);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        this.compare = { kind: "delete", current: e.current ?? null, openedVersion: opened.openedVersion, openedRaw: opened.openedRaw };
        if (e.current) this.setItem(e.current);
        this.render();
        this.mainEl.querySelector('[data-testid="conflict"] button')?.focus();
      } else {
        this.ctx.toast(`Not deleted: ${e.message}`, "error");
      }
    }
  }

  // ---- history ---------------------------------------------------------------------------

  async loadHistory({ more = false } = {}) {
    if (this.key === null) return;
    const seq = this.seq;
    const h0 = this.history;
    if (h0.loading && more) return;
    h0.loading = true;
    try {
      const data = await api.history(this.group, this.key, more ? h0.cursor : undefined, HISTORY_PAGE);
      if (seq !== this.seq || h0 !== this.history) return;
      h0.entries = more ? [...h0.entries, ...(data.entries || [])] : data.entries || [];
      h0.cursor = data.cursor ?? null;
      h0.recordValues = data.record_values !== false;
      h0.error = "";
      h0.unsupported = false;
    } catch (e) {
      if (seq !== this.seq || h0 !== this.history) return;
      h0.unsupported = e instanceof ApiError && e.status === 501;
      h0.error = h0.unsupported ? "History needs a change feed; this backend has none." : `History could not be read: ${e.message}`;
    } finally {
      h0.loading = false;
    }
    this.renderHistory();
  }

  renderHistory() {
    clear(this.historyEl);
    if (this.key === null || this.state === "loading") return;
    const hist = this.history;
    this.historyEl.append(h("h3", { class: "section-title", id: "history-title", text: "History" }));
    if (hist.error) {
      this.historyEl.append(h("p", { class: hist.unsupported ? "muted" : "pane-error", testid: "history-error", text: hist.error }));
      return;
    }
    if (!hist.entries.length) {
      this.historyEl.append(h("p", { class: "muted", testid: "history-empty", text: hist.loading ? "Loading…" : "No change recorded for this item." }));
      return;
    }
    if (!hist.recordValues || hist.entries.some((e) => !e.has_values)) {
      this.historyEl.append(
        h("p", { class: "muted small", testid: "history-novalues" }, "Values are recorded with ", h("code", { text: "record_values=True" }), "; without them the history shows the operation, version and time only."),
      );
    }
    const list = h("ol", { class: "history-list" });
    hist.entries.forEach((entry, i) => list.append(this.historyEntry(entry, hist.entries[i + 1])));
    this.historyEl.append(list);
    if (hist.cursor !== null) {
      this.historyEl.append(h("button", { type: "button", class: "button small", testid: "history-more", text: "Older changes", onclick: () => this.loadHistory({ more: true }) }));
    }
  }

  historyEntry(entry, older) {
    const open = this.history.open.has(entry.id);
    const canDiff = entry.has_values;
    const id = `hist-${entry.id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const summary = h(
      canDiff ? "button" : "div",
      {
        type: canDiff ? "button" : undefined,
        class: "history-summary",
        "aria-expanded": canDiff ? (open ? "true" : "false") : undefined,
        "aria-controls": canDiff ? id : undefined,
        onclick: canDiff
          ? () => {
              if (open) this.history.open.delete(entry.id);
              else this.history.open.add(entry.id);
              this.renderHistory();
              this.historyEl.querySelector(`[aria-controls="${id}"]`)?.focus();
            }
          : undefined,
      },
      h("span", { class: `op op-${String(entry.op).replace(/[^a-z_]/g, "")}`, text: entry.op }),
      h("span", { class: "history-version", text: entry.version === null || entry.version === undefined ? "—" : `v${entry.version}` }),
      when(entry.ts),
      canDiff ? h("span", { class: "history-toggle", "aria-hidden": "true", text: open ? "▾" : "▸" }) : null,
    );
    const li = h("li", { class: "history-entry", testid: "history-entry" }, summary);
    if (canDiff && open) {
      // The value before: the record's own old value, else the next older record's value.
      const absent = (v) => v === null || v === undefined;
      let before = "";
      let beforeLabel = `version ${entry.prev_version}`;
      if (!entry.prev_version) beforeLabel = "before (absent)";
      else if (typeof entry.old_raw === "string" && !absent(entry.old_value)) before = entry.old_raw;
      else if (!absent(entry.old_value)) before = pretty(entry.old_value);
      else if (older && older.has_values && older.version === entry.prev_version && !absent(older.value)) {
        before = typeof older.raw === "string" ? older.raw : pretty(older.value);
      } else if (typeof entry.old_raw === "string") before = entry.old_raw;
      const removed = GONE.has(entry.op);
      const after = removed ? "" : typeof entry.raw === "string" ? entry.raw : pretty(entry.value);
      const afterLabel = removed ? `after (${entry.op === "delete" ? "deleted" : "removed"})` : `version ${entry.version}`;
      li.append(h("div", { class: "history-diff", id, testid: "history-diff" }, renderSideBySide(before, after, { aLabel: beforeLabel, bLabel: afterLabel })));
    }
    return li;
  }
}
