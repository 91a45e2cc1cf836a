// motia-state inspector: wires the panes, the address, the change stream and the keyboard.
// The page is plain ES modules served by `motia-state ui`; nothing comes from the network.

import { api } from "./api.js";
import { h, clear, nameText } from "./dom.js";
import { startClock } from "./clock.js";
import { Router, routePath } from "./router.js";
import { GroupsPane } from "./groups-pane.js";
import { ItemsPane } from "./items-pane.js";
import { ItemPane } from "./item-pane.js";
import { Pictures } from "./pictures.js";
import { Live } from "./live.js";
import { installKeys, showShortcuts } from "./keys.js";
import { confirmDialog } from "./dialogs.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const ctx = {
  info: null,
  route: { group: null, key: null },

  toast(message, kind = "info") {
    const el = h("div", { class: `toast ${kind}`, testid: "toast", role: kind === "error" ? "alert" : "status", text: message });
    $("toasts").append(el);
    setTimeout(() => el.classList.add("leaving"), kind === "error" ? 7000 : 3500);
    setTimeout(() => el.remove(), kind === "error" ? 7500 : 4000);
  },

  banner(message) {
    const el = $("banner");
    el.textContent = message || "";
    el.hidden = !message;
  },

  /** Navigates, after asking when an unsaved edit would be lost. */
  async go(route, { replace = false } = {}) {
    if (!(await leaveEdit(route))) return;
    router.go(route, { replace });
  },

  /** A write made by this page: the row, the counts and the pictures follow. */
  written(item) {
    if (!item) return; // gone already (an expiry shorter than the round trip)
    if (item.group === ctx.items.group) ctx.items.upsert(item.key, item);
    ctx.groups.reloadSoon();
    if (item.group === ctx.route.group) ctx.pictures.reloadExpiriesSoon();
  },

  deleted(group, key) {
    if (group === ctx.items.group) ctx.items.upsert(key, null);
    ctx.groups.reloadSoon();
    ctx.pictures.reloadExpiriesSoon();
    router.go({ group, key: null });
  },

  cleared(group) {
    if (group === ctx.items.group) ctx.items.reload();
    ctx.groups.load({ quiet: true });
    ctx.pictures.loadExpiries();
    if (group === ctx.item.group) ctx.item.refresh();
  },
};

/** True when the route may change: no unsaved edit, or the user chose to drop it. */
async function leaveEdit(route) {
  const item = ctx.item;
  if (!item.editing || (route.group === item.group && route.key === item.key)) return true;
  if (!item.dirty) {
    await item.cancelEdit({ ask: false });
    return true;
  }
  const ok = await confirmDialog({
    title: "Discard your changes?",
    message: "The item you are editing has unsaved changes.",
    confirm: "Discard",
    kind: "danger",
    testid: "discard-dialog",
  });
  if (ok) await item.cancelEdit({ ask: false });
  return ok;
}

async function onRoute(route, { pop }) {
  if (route.invalid) {
    ctx.toast("That address is not a page of the inspector.", "error");
    router.go({ group: null, key: null }, { replace: true });
    return;
  }
  if (pop && !(await leaveEdit(route))) {
    // Back/forward left an unsaved edit: stay where the edit is.
    try {
      history.pushState(null, "", routePath(ctx.route));
    } catch {
      /* a name no address carries: the panes already show the edit */
    }
    return;
  }
  ctx.route = { group: route.group, key: route.key };
  ctx.groups.select(route.group);
  ctx.items.open(route.group);
  ctx.items.select(route.key);
  ctx.item.open(route.group, route.key);
  ctx.pictures.setGroup(route.group);
  const parts = [];
  if (route.key !== null) parts.push(nameText(route.key, 60));
  if (route.group !== null) parts.push(nameText(route.group, 60));
  parts.push("motia-state");
  document.title = parts.join(" · ");
}

const router = new Router(onRoute);

function setupTheme() {
  // theme.js has set data-theme (and keeps it on the system's while no choice is remembered).
  const root = document.documentElement;
  const toggle = $("theme-toggle");
  const media = matchMedia("(prefers-color-scheme: dark)");
  const other = () => (root.dataset.theme === "dark" ? "light" : "dark");
  const label = () => {
    toggle.setAttribute("aria-label", `Switch to the ${other()} theme`);
    toggle.title = `Switch to the ${other()} theme`;
  };
  toggle.addEventListener("click", () => {
    const next = other();
    try {
      // Back to the system's own choice: forget the override, and follow the system again.
      if (next === (media.matches ? "dark" : "light")) localStorage.removeItem("motia-state.theme");
      else localStorage.setItem("motia-state.theme", next);
    } catch {
      /* not remembered */
    }
    root.dataset.theme = next;
    label();
  });
  media.addEventListener("change", label); // after theme.js's own listener: the new theme
  label();
}

function setLiveStatus(kind, text, title) {
  const el = $("live-status");
  el.dataset.state = kind;
  el.title = title || "";
  clear(el).append(h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "live-text", text }));
}

function showInfo(info) {
  const el = $("backend");
  clear(el).append(
    h("span", { class: "backend-kind", testid: "backend-kind", text: info.backend }),
    h("span", { class: "backend-url", testid: "backend-url", title: info.url, text: info.url }),
  );
}

async function loadInfo() {
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await api.info();
      ctx.banner("");
      return info;
    } catch (e) {
      ctx.banner(e.message);
      if (e.status === 401) return null;
      await new Promise((r) => setTimeout(r, Math.min(10000, 1000 * (attempt + 1))));
    }
  }
}

async function main() {
  setupTheme();
  startClock();
  ctx.groups = new GroupsPane(ctx, $("groups-pane"));
  ctx.items = new ItemsPane(ctx, $("items-pane"));
  ctx.item = new ItemPane(ctx, $("item-pane"));
  ctx.pictures = new Pictures(ctx, $("pictures"), $("pictures-toggle"));
  ctx.groups.onLoaded((groups, search) => {
    if (!search) ctx.pictures.drawGroups(groups);
    ctx.items.updateSummary();
  });
  $("help-button").addEventListener("click", showShortcuts);
  installKeys(ctx);
  window.addEventListener("beforeunload", (event) => {
    if (ctx.item.dirty) event.preventDefault();
  });

  setLiveStatus("wait", "Connecting…");
  const info = await loadInfo();
  if (!info) {
    setLiveStatus("down", "Not signed in");
    return;
  }
  ctx.info = info;
  showInfo(info);
  document.body.dataset.live = info.live;
  onRoute(router.current(), { pop: false });
  ctx.groups.load();
  ctx.pictures.loadMetrics();

  ctx.live = new Live({
    onStatus: setLiveStatus,
    onChange(change) {
      ctx.groups.reloadSoon();
      if (change.group === ctx.items.group) {
        ctx.items.applyChange(change);
        ctx.pictures.reloadExpiriesSoon();
      }
      ctx.item.applyChange(change);
    },
    onRate: (event) => ctx.pictures.onRate(event),
    onResync() {
      ctx.groups.load({ quiet: true });
      if (ctx.items.group !== null) ctx.items.poll();
      ctx.item.refresh();
      ctx.pictures.loadMetrics();
      ctx.pictures.reloadExpiriesSoon();
    },
    onReload(reason) {
      ctx.toast(`Reading everything again: ${reason || "this page fell behind the change feed"}.`);
    },
    async onPoll() {
      await Promise.all([
        ctx.groups.load({ quiet: true }),
        ctx.items.poll(),
        ctx.item.refresh(),
      ]);
      ctx.pictures.reloadExpiriesSoon();
    },
  });
  ctx.live.start(info);
  document.body.dataset.ready = "true";
}

main();
