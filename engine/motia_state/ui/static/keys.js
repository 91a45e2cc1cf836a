// Keyboard: `/` search, ↑/↓ or j/k move in the focused list, Enter opens, ←/→ or h/l between
// the lists, `e` edits, Ctrl/Cmd+S saves, Esc leaves the editor (dialogs close on Esc
// themselves), `?` lists all this.

import { h } from "./dom.js";
import { openDialog } from "./dialogs.js";

const SHORTCUTS = [
  [["/"], "Search (the groups, or the open group's keys)"],
  [["↑ ↓", "j k"], "Move in the focused list"],
  [["Home", "End"], "First or last row"],
  [["Enter"], "Open the focused group or item"],
  [["← →", "h l"], "Between the groups and the items"],
  [["e"], "Edit the open item"],
  [["Ctrl+S", "⌘S"], "Save the edit"],
  [["Esc"], "Leave the editor, close a dialog, clear a search"],
  [["?"], "This list"],
];

export function showShortcuts() {
  const rows = SHORTCUTS.map(([keys, what]) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, keys.map((k, i) => [i ? " or " : "", h("kbd", { text: k })])),
      h("td", { text: what }),
    ),
  );
  openDialog({
    title: "Keyboard shortcuts",
    testid: "help-dialog",
    body: [h("table", { class: "shortcuts" }, h("tbody", {}, rows))],
    actions: [],
    cancelLabel: "Close",
  });
}

function options(list) {
  return [...list.querySelectorAll(':scope > [role="option"]')];
}

export function installKeys(ctx) {
  let lastList = null; // "groups" | "items": where the focus was last
  document.addEventListener("focusin", (event) => {
    const pane = event.target.closest && event.target.closest(".pane");
    if (!pane) return;
    if (pane.dataset.testid === "groups-pane") lastList = "groups";
    else if (pane.dataset.testid === "items-pane") lastList = "items";
  });

  const activeList = (target) => {
    const inList = target.closest && target.closest('[role="listbox"]');
    if (inList) return inList;
    const which = lastList || (ctx.route.group !== null ? "items" : "groups");
    return which === "groups" ? ctx.groups.list : ctx.items.list;
  };

  const move = (target, step) => {
    const list = activeList(target);
    const rows = options(list);
    if (!rows.length) return;
    let i = rows.indexOf(target.closest ? target.closest('[role="option"]') : null);
    if (i < 0) i = rows.findIndex((r) => r.getAttribute("aria-selected") === "true");
    const next = step === "first" ? 0 : step === "last" ? rows.length - 1 : i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + step));
    rows.forEach((r) => (r.tabIndex = -1));
    rows[next].tabIndex = 0;
    rows[next].focus();
    rows[next].scrollIntoView({ block: "nearest" });
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target instanceof Element ? event.target : document.body;
    const inDialog = Boolean(target.closest("dialog[open]")) || Boolean(document.querySelector("dialog[open]"));
    const typing = target.matches('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
    const mod = event.ctrlKey || event.metaKey;

    if (mod && !event.altKey && !event.shiftKey && event.key.toLowerCase() === "s") {
      event.preventDefault(); // never the browser's "save page"
      if (!inDialog && ctx.item.editing) ctx.item.save();
      return;
    }
    if (inDialog) return;

    if (event.key === "Escape") {
      if (target.matches('input[type="search"]')) {
        if (!target.value) target.blur();
        return; // a search box clears itself on Esc
      }
      if (ctx.item.compare) {
        event.preventDefault();
        if (ctx.item.editing) ctx.item.backToEditor();
        else ctx.item.reloadTheirs();
      } else if (ctx.item.editing) {
        event.preventDefault();
        ctx.item.cancelEdit();
      }
      return;
    }
    if (typing || mod || event.altKey) return;

    switch (event.key) {
      case "/": {
        event.preventDefault();
        const which = lastList || (ctx.route.group !== null ? "items" : "groups");
        const box = which === "items" && ctx.route.group !== null ? ctx.items.searchBox : ctx.groups.searchBox;
        box.focus();
        box.select();
        return;
      }
      case "?":
        event.preventDefault();
        showShortcuts();
        return;
      case "e":
        if (ctx.item.item && ctx.item.state === "view" && !ctx.item.editing) {
          event.preventDefault();
          ctx.item.startEdit();
        }
        return;
      case "ArrowDown":
      case "j":
        event.preventDefault();
        move(target, 1);
        return;
      case "ArrowUp":
      case "k":
        event.preventDefault();
        move(target, -1);
        return;
      case "Home":
      case "End":
        if (target.closest('[role="listbox"]')) {
          event.preventDefault();
          move(target, event.key === "Home" ? "first" : "last");
        }
        return;
      case "ArrowLeft":
      case "h":
        if (target.closest('[role="tablist"]')) return;
        event.preventDefault();
        lastList = "groups";
        ctx.groups.focusSelected();
        return;
      case "ArrowRight":
      case "l":
        if (target.closest('[role="tablist"]')) return;
        if (ctx.route.group === null) return;
        event.preventDefault();
        lastList = "items";
        ctx.items.focusSelected();
        return;
      case "Enter":
      case " ": {
        const option = target.closest('[role="option"]');
        if (option) {
          event.preventDefault();
          option.click();
        }
        return;
      }
      default:
    }
  });
}
