// A collapsible JSON tree for the inspector's item pane.
//
// Values and keys come from whoever wrote the state, so they are hostile: everything
// reaches the DOM through createElement/textContent, never markup. A level is built only
// when it is expanded (and then at most `maxChildren` children at a time), so a value nested
// 500 deep or holding a 1 MB string costs what is on screen, and the initial expansion runs
// from a work queue rather than recursion, so no nesting depth can exhaust the stack.

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// A key shown bare must read unambiguously: no quotes, controls, line breaks or edge spaces.
const PLAIN_KEY = /^[^\s"\\\u0000-\u001f\u007f-\u009f\u2028\u2029]([^"\\\u0000-\u001f\u007f-\u009f\u2028\u2029]*[^\s"\\\u0000-\u001f\u007f-\u009f\u2028\u2029])?$/;
const LONG_STRING = 300;
const KEY_SHOWN = 200;
const PREVIEW_CHARS = 60;

// Per node element: what its keyboard handler needs (expand, collapse, state).
const NODES = new WeakMap();

/** The JSON path of a child: `a.b[2]`, `a["odd key"]`, `[0]` under an array root. */
export function childPath(parent, key, isIndex) {
  if (isIndex) return `${parent}[${key}]`;
  if (IDENTIFIER.test(key)) return parent === "" ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

function kindOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const t = typeof value;
  if (t === "object") return "object";
  if (t === "string") return "string";
  if (t === "number" || t === "bigint") return "number";
  if (t === "boolean") return "bool";
  return "other";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function plural(n, one, many) {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

function keyLabel(key) {
  const shown = key.length > KEY_SHOWN ? `${key.slice(0, safeCut(key, KEY_SHOWN))}…` : key;
  return PLAIN_KEY.test(key) ? shown : JSON.stringify(shown);
}

// Where to cut a string near `at` without splitting a surrogate pair.
function safeCut(s, at) {
  const code = s.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}

function quoted(s, limit) {
  if (s.length <= limit) return JSON.stringify(s);
  return `${JSON.stringify(s.slice(0, safeCut(s, limit))).slice(0, -1)}…"`;
}

function scalarText(value, kind) {
  if (kind === "string") return quoted(value, 24);
  if (kind === "null") return "null";
  if (kind === "object") return "{…}";
  if (kind === "array") return "[…]";
  return String(value);
}

// A one-line summary of a collapsed container: its first children, one level only.
function preview(value, kind, keys) {
  const open = kind === "array" ? "[" : "{";
  const close = kind === "array" ? "]" : "}";
  const count = kind === "array" ? value.length : keys.length;
  let text = open;
  for (let i = 0; i < count; i++) {
    const child = kind === "array" ? value[i] : value[keys[i]];
    const part = scalarText(child, kindOf(child));
    const item = kind === "array" ? part : `${keyLabel(keys[i])}: ${part}`;
    const next = `${text}${i ? ", " : ""}${item}`;
    if (next.length > PREVIEW_CHARS) return `${text}${i ? ", " : ""}…${close}`;
    text = next;
  }
  return text + close;
}

function sizeLabel(value, kind, keys) {
  return kind === "array" ? `[${value.length.toLocaleString("en-US")}]` : `{${plural(keys.length, "key", "keys")}}`;
}

function copyButton(path) {
  const button = el("button", "tree-copy", "⧉");
  button.type = "button";
  button.tabIndex = -1; // keyboard users copy with "c" on the focused row
  button.title = "Copy path";
  button.setAttribute("aria-label", `Copy path ${path.length > 200 ? `${path.slice(0, 200)}…` : path}`);
  return button;
}

/** Copy a node's path to the clipboard and announce it with a bubbling `tree-copy` event. */
function copyPath(node) {
  const path = node.dataset.path;
  const clipboard = globalThis.navigator && navigator.clipboard;
  if (clipboard && clipboard.writeText) clipboard.writeText(path).catch(() => {});
  node.dispatchEvent(new CustomEvent("tree-copy", { bubbles: true, detail: { path } }));
}

function renderString(value) {
  const span = el("span", "tree-string");
  if (value.length <= LONG_STRING) {
    span.textContent = JSON.stringify(value);
    return [span];
  }
  const short = quoted(value, LONG_STRING);
  span.textContent = short;
  const toggle = el("button", "tree-show-all", "…show all");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", "false");
  toggle.title = `${value.length.toLocaleString("en-US")} characters`;
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    const full = toggle.getAttribute("aria-expanded") !== "true";
    span.textContent = full ? JSON.stringify(value) : short;
    toggle.textContent = full ? "show less" : "…show all";
    toggle.setAttribute("aria-expanded", String(full));
  });
  return [span, toggle];
}

function renderLeaf(value, kind, key, path) {
  const node = el("div", "tree-node tree-leaf");
  node.dataset.path = path;
  node.dataset.type = kind;
  const row = el("div", "tree-row");
  row.tabIndex = -1;
  if (key !== null) {
    row.append(el("span", "tree-key", key), el("span", "tree-colon", ": "));
  }
  if (kind === "string") row.append(...renderString(value));
  else if (kind === "null") row.append(el("span", "tree-null", "null"));
  else if (kind === "bool") row.append(el("span", "tree-bool", String(value)));
  else if (kind === "number") row.append(el("span", "tree-number", String(value)));
  else row.append(el("span", "tree-other", String(value)));
  if (path !== "") row.append(copyButton(path));
  node.append(row);
  return node;
}

function renderContainer(value, kind, key, path, depth, ctx) {
  const keys = kind === "array" ? null : Object.keys(value);
  const count = kind === "array" ? value.length : keys.length;
  const node = el("div", `tree-node tree-${kind}`);
  node.dataset.path = path;
  node.dataset.type = kind;
  const row = el("div", "tree-row");
  const toggle = el("button", "tree-toggle");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", "false");
  toggle.append(el("span", "tree-arrow"));
  toggle.firstChild.setAttribute("aria-hidden", "true");
  if (key !== null) toggle.append(el("span", "tree-key", key), el("span", "tree-colon", ": "));
  toggle.append(el("span", "tree-size", sizeLabel(value, kind, keys)));
  const previewSpan = el("span", "tree-preview", count ? preview(value, kind, keys) : "");
  toggle.append(previewSpan);
  row.append(toggle);
  if (path !== "") row.append(copyButton(path));
  node.append(row);

  let children = null; // built on the first expansion
  let shown = 0;

  function renderMore() {
    const end = Math.min(count, shown + ctx.maxChildren);
    const frag = document.createDocumentFragment();
    let first = null;
    for (let i = shown; i < end; i++) {
      const childKey = kind === "array" ? null : keys[i];
      const child = kind === "array" ? value[i] : value[childKey];
      const childPathText = childPath(path, kind === "array" ? i : childKey, kind === "array");
      const childNode = build(child, kind === "array" ? String(i) : keyLabel(childKey), childPathText, depth + 1, ctx);
      if (kind !== "array" && childKey.length > KEY_SHOWN) {
        childNode.querySelector(".tree-key").title = childKey.slice(0, 1000);
      }
      first = first || childNode;
      frag.append(childNode);
    }
    shown = end;
    if (shown < count) {
      const rest = count - shown;
      const next = Math.min(rest, ctx.maxChildren);
      const more = el("button", "tree-show-more", rest > next ? `show ${next} more of ${rest.toLocaleString("en-US")}` : `show ${next} more`);
      more.type = "button";
      more.addEventListener("click", (event) => {
        event.stopPropagation();
        const focusNext = document.activeElement === more;
        more.remove();
        const added = renderMore();
        if (focusNext && added) focusRow(added);
      });
      frag.append(more);
    }
    children.append(frag);
    drain(ctx);
    return first;
  }

  const api = {
    expanded: () => toggle.getAttribute("aria-expanded") === "true",
    expand() {
      if (api.expanded()) return;
      if (children === null) {
        children = el("div", "tree-children");
        children.setAttribute("role", "group");
        node.append(children);
        renderMore();
      }
      children.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      previewSpan.hidden = true;
    },
    collapse() {
      if (!api.expanded()) return;
      children.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      previewSpan.hidden = false;
    },
    firstChild: () => children && children.querySelector(":scope > .tree-node"),
  };
  NODES.set(node, api);
  toggle.addEventListener("click", () => (api.expanded() ? api.collapse() : api.expand()));
  if (depth < ctx.collapsedDepth) ctx.queue.push(api);
  return node;
}

// Expand the containers queued to start open. Breadth-first from a queue, never recursive:
// an expand() only queues its children, so nesting depth costs no stack.
function drain(ctx) {
  if (ctx.draining) return;
  ctx.draining = true;
  try {
    for (let i = 0; i < ctx.queue.length; i++) ctx.queue[i].expand();
  } finally {
    ctx.queue.length = 0;
    ctx.draining = false;
  }
}

function build(value, key, path, depth, ctx) {
  const kind = kindOf(value);
  if (kind === "object" || kind === "array") return renderContainer(value, kind, key, path, depth, ctx);
  return renderLeaf(value, kind, key, path);
}

function rowOf(node) {
  return node.querySelector(":scope > .tree-row > .tree-toggle") || node.querySelector(":scope > .tree-row");
}

function focusRow(node) {
  const row = rowOf(node);
  if (row) row.focus();
}

function visibleRows(root) {
  return [...root.querySelectorAll(".tree-toggle, .tree-leaf > .tree-row")].filter(
    (row) => !row.parentElement.closest(".tree-children[hidden]"),
  );
}

function onKeydown(event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const row = event.target.closest(".tree-toggle, .tree-leaf > .tree-row");
  if (!row || !this.contains(row)) return;
  const node = row.closest(".tree-node");
  const api = NODES.get(node);
  const parent = node.parentElement.closest(".tree-node");
  let handled = true;
  if (event.key === "ArrowRight") {
    if (api && !api.expanded()) api.expand();
    else if (api && api.firstChild()) focusRow(api.firstChild());
  } else if (event.key === "ArrowLeft") {
    if (api && api.expanded()) api.collapse();
    else if (parent && this.contains(parent)) focusRow(parent);
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp" || event.key === "Home" || event.key === "End") {
    const rows = visibleRows(this);
    const at = rows.indexOf(row);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
    if (rows[to]) rows[to].focus();
  } else if (event.key === "c" && !event.shiftKey && node.dataset.path !== "") {
    copyPath(node);
  } else {
    handled = false;
  }
  if (handled) {
    event.preventDefault();
    event.stopPropagation();
  }
}

function onClick(event) {
  const button = event.target.closest(".tree-copy");
  if (button && this.contains(button)) {
    event.stopPropagation();
    copyPath(button.closest(".tree-node"));
  }
}

/**
 * Render any JSON value as a collapsible tree.
 *
 * options.collapsedDepth (default 2): containers at this depth or deeper start collapsed
 * (the root is depth 0). options.maxChildren (default 200): children rendered per batch; the
 * rest behind a "show N more" button.
 */
export function renderTree(value, options = {}) {
  const collapsedDepth = Number.isFinite(options.collapsedDepth) || options.collapsedDepth === Infinity
    ? Math.max(0, options.collapsedDepth)
    : 2;
  const maxChildren = Number.isInteger(options.maxChildren) && options.maxChildren > 0 ? options.maxChildren : 200;
  const ctx = { collapsedDepth, maxChildren, queue: [], draining: false };
  const root = el("div", "tree");
  root.append(build(value, null, "", 0, ctx));
  drain(ctx);
  root.addEventListener("keydown", onKeydown);
  root.addEventListener("click", onClick);
  return root;
}
