// Line diffs for the inspector: history (a version against the one before) and the conflict
// view (mine against theirs).
//
// diffLines is exact where it can afford to be and bounded where it could not be: Myers'
// O(ND) algorithm gives a shortest edit script (the most unchanged lines) fast while the edit
// distance D stays under MAX_D; past that, a range of at most LCS_CELLS line pairs (5,000 by
// 5,000) still gets an exact longest common subsequence in linear space (Hirschberg), in
// O(NM) time. A larger range anchors on lines unique to both sides (patience diff) and diffs
// the gaps the same way, a few levels deep, and a gap still out of reach is a plain
// delete-then-add. Every path yields a script that turns a into b; only the last two may
// keep fewer lines than the best.
//
// Line texts are hostile (any state value): the renderers use textContent only.

const MAX_D = 1000; // Myers keeps about D² integers of trace
const LARGE = 5000; // lines on each side past which Myers is not tried
const LCS_CELLS = LARGE * LARGE; // line pairs an exact LCS may visit
const MAX_LEVEL = 6; // patience over gaps of gaps ...
const SAME = 0;
const DEL = 1;
const ADD = 2;
const CONTEXT = 3; // unchanged lines kept around a change when a run is folded
const FOLD_OVER = 6; // unchanged runs longer than this are folded

/** A text's lines: "" has none, and joining the lines with "\n" gives the text back. */
export function splitLines(text) {
  const s = text === null || text === undefined ? "" : String(text);
  return s === "" ? [] : s.split("\n");
}

// Myers' greedy forward search with a trace for the walk back; null when D > maxD.
function myers(a, aLo, aHi, b, bLo, bHi, maxD, out) {
  const n = aHi - aLo;
  const m = bHi - bLo;
  const max = Math.min(n + m, maxD);
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    trace.push(v.slice(off - d - 1, off + d + 2)); // k in [-d-1, d+1]
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[aLo + x] === b[bLo + y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return false;
  const steps = [];
  let x = n;
  let y = m;
  for (let d = found; d >= 0; d--) {
    const snap = trace[d];
    const at = (k) => snap[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      steps.push(SAME);
      x--;
      y--;
    }
    if (d > 0) steps.push(x === prevX ? ADD : DEL);
    x = prevX;
    y = prevY;
  }
  for (let i = steps.length - 1; i >= 0; i--) out.push(steps[i]);
  return true;
}

// LCS lengths of a[aLo:aHi] against every prefix (or, reversed, every suffix) of b[bLo:bHi]:
// row[k] = LCS(a range, b[bLo:bLo+k]) forward, LCS(a range, b[bLo+k:bHi]) reversed.
function lcsRow(a, aLo, aHi, b, bLo, bHi, reverse) {
  const m = bHi - bLo;
  let row = new Int32Array(m + 1);
  let next = new Int32Array(m + 1);
  for (let s = 0; s < aHi - aLo; s++) {
    const line = reverse ? a[aHi - 1 - s] : a[aLo + s];
    if (reverse) {
      next[m] = 0;
      for (let k = m - 1; k >= 0; k--) {
        next[k] = b[bLo + k] === line ? row[k + 1] + 1 : Math.max(row[k], next[k + 1]);
      }
    } else {
      next[0] = 0;
      for (let k = 1; k <= m; k++) {
        next[k] = b[bLo + k - 1] === line ? row[k - 1] + 1 : Math.max(row[k], next[k - 1]);
      }
    }
    [row, next] = [next, row];
  }
  return row;
}

// The common head and tail of two ranges go out as SAME around what `middle(aLo, aHi, bLo,
// bHi)` writes for the rest (both sides of it non-empty); a rest empty on one side is a plain
// delete-then-add.
function aroundCommon(a, aLo, aHi, b, bLo, bHi, out, middle) {
  while (aLo < aHi && bLo < bHi && a[aLo] === b[bLo]) {
    out.push(SAME);
    aLo++;
    bLo++;
  }
  let tail = 0;
  while (aHi > aLo && bHi > bLo && a[aHi - 1] === b[bHi - 1]) {
    aHi--;
    bHi--;
    tail++;
  }
  if (aLo === aHi || bLo === bHi) {
    push(out, DEL, aHi - aLo);
    push(out, ADD, bHi - bLo);
  } else middle(aLo, aHi, bLo, bHi);
  push(out, SAME, tail);
}

// Hirschberg: an exact LCS script in linear space; recursion depth log2 of a's length.
function hirschberg(a, aLo, aHi, b, bLo, bHi, out) {
  aroundCommon(a, aLo, aHi, b, bLo, bHi, out, (aLo, aHi, bLo, bHi) => {
    if (aHi - aLo === 1) {
      const at = b.subarray(bLo, bHi).indexOf(a[aLo]);
      if (at < 0) {
        push(out, DEL, 1);
        push(out, ADD, bHi - bLo);
      } else {
        push(out, ADD, at);
        out.push(SAME);
        push(out, ADD, bHi - bLo - at - 1);
      }
      return;
    }
    const mid = (aLo + aHi) >> 1;
    const head = lcsRow(a, aLo, mid, b, bLo, bHi, false);
    const rest = lcsRow(a, mid, aHi, b, bLo, bHi, true);
    let split = 0;
    for (let k = 1; k <= bHi - bLo; k++) if (head[k] + rest[k] > head[split] + rest[split]) split = k;
    hirschberg(a, aLo, mid, b, bLo, bLo + split, out);
    hirschberg(a, mid, aHi, b, bLo + split, bHi, out);
  });
}

function push(out, op, count) {
  for (let i = 0; i < count; i++) out.push(op);
}

// Anchors: lines that occur exactly once in each range, kept in the longest run that is
// increasing on both sides (patience sorting, O(k log k)).
function anchors(a, aLo, aHi, b, bLo, bHi) {
  const inA = new Map();
  for (let i = aLo; i < aHi; i++) {
    const seen = inA.get(a[i]);
    inA.set(a[i], seen === undefined ? i : -1);
  }
  const inB = new Map();
  for (let j = bLo; j < bHi; j++) {
    const seen = inB.get(b[j]);
    inB.set(b[j], seen === undefined ? j : -1);
  }
  const pairs = [];
  for (let j = bLo; j < bHi; j++) {
    const i = inA.get(b[j]);
    if (i !== undefined && i >= 0 && inB.get(b[j]) === j) pairs.push([i, j]);
  }
  const tails = []; // tails[len-1] = index in pairs of the smallest a-end of a run of len
  const prev = new Int32Array(pairs.length);
  for (let p = 0; p < pairs.length; p++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pairs[tails[mid]][0] < pairs[p][0]) lo = mid + 1;
      else hi = mid;
    }
    prev[p] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = p;
  }
  const run = [];
  for (let p = tails.length ? tails[tails.length - 1] : -1; p >= 0; p = prev[p]) run.push(pairs[p]);
  return run.reverse();
}

function diffRange(a, aLo, aHi, b, bLo, bHi, level, out) {
  aroundCommon(a, aLo, aHi, b, bLo, bHi, out, (aLo, aHi, bLo, bHi) => {
    if (!(aHi - aLo > LARGE && bHi - bLo > LARGE) && myers(a, aLo, aHi, b, bLo, bHi, MAX_D, out)) return;
    if ((aHi - aLo) * (bHi - bLo) <= LCS_CELLS) {
      hirschberg(a, aLo, aHi, b, bLo, bHi, out);
      return;
    }
    const found = level < MAX_LEVEL ? anchors(a, aLo, aHi, b, bLo, bHi) : [];
    let i = aLo;
    let j = bLo;
    for (const [ai, bj] of found) {
      diffRange(a, i, ai, b, j, bj, level + 1, out);
      out.push(SAME);
      i = ai + 1;
      j = bj + 1;
    }
    if (found.length) {
      diffRange(a, i, aHi, b, j, bHi, level + 1, out);
    } else {
      push(out, DEL, aHi - aLo);
      push(out, ADD, bHi - bLo);
    }
  });
}

/**
 * A line diff of two texts: [{op: "same"|"add"|"del", a, b, text}], a and b the 1-based line
 * numbers on each side (null on the side a line is not on). Within each change the deleted
 * lines come before the added ones. Keeping the "same" and "del" lines gives a's lines, the
 * "same" and "add" lines b's.
 */
export function diffLines(aText, bText) {
  const aLines = splitLines(aText);
  const bLines = splitLines(bText);
  const ids = new Map();
  const intern = (line) => {
    let id = ids.get(line);
    if (id === undefined) {
      id = ids.size;
      ids.set(line, id);
    }
    return id;
  };
  const a = Int32Array.from(aLines, intern);
  const b = Int32Array.from(bLines, intern);
  const script = [];
  diffRange(a, 0, a.length, b, 0, b.length, 0, script);
  const ops = [];
  let i = 0;
  let j = 0;
  let s = 0;
  while (s < script.length) {
    if (script[s] === SAME) {
      ops.push({ op: "same", a: i + 1, b: j + 1, text: aLines[i] });
      i++;
      j++;
      s++;
      continue;
    }
    const adds = [];
    for (; s < script.length && script[s] !== SAME; s++) {
      if (script[s] === DEL) {
        ops.push({ op: "del", a: i + 1, b: null, text: aLines[i] });
        i++;
      } else {
        adds.push({ op: "add", a: null, b: j + 1, text: bLines[j] });
        j++;
      }
    }
    for (const add of adds) ops.push(add);
  }
  return ops;
}

// The ops as runs: {same: [ops]} or {dels: [ops], adds: [ops]}.
function segments(ops) {
  const out = [];
  for (const op of ops) {
    let last = out[out.length - 1];
    if (op.op === "same") {
      if (!last || !last.same) out.push((last = { same: [] }));
      last.same.push(op);
    } else {
      if (!last || last.same) out.push((last = { dels: [], adds: [] }));
      (op.op === "del" ? last.dels : last.adds).push(op);
    }
  }
  return out;
}

// An unchanged run split into [shown before, folded, shown after].
function fold(run, first, last) {
  if (run.length <= FOLD_OVER) return [run, [], []];
  const lead = first ? 0 : CONTEXT;
  const trail = last ? 0 : CONTEXT;
  if (run.length - lead - trail <= 0) return [run, [], []];
  return [run.slice(0, lead), run.slice(lead, run.length - trail), run.slice(run.length - trail)];
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function summary(ops) {
  let adds = 0;
  let dels = 0;
  for (const op of ops) {
    if (op.op === "add") adds++;
    else if (op.op === "del") dels++;
  }
  const node = el("span", "diff-summary");
  if (!adds && !dels) node.textContent = "no differences";
  else {
    node.append(el("span", "diff-summary-del", `−${dels}`), " ", el("span", "diff-summary-add", `+${adds}`));
    node.setAttribute("aria-label", `${dels} line${dels === 1 ? "" : "s"} removed, ${adds} added`);
  }
  return node;
}

const MARK = { same: " ", del: "-", add: "+" };

function foldLabel(n) {
  return `… ${n.toLocaleString("en-US")} unchanged line${n === 1 ? "" : "s"}`;
}

// A folded run: one button per column; any of them puts the hidden rows in every column.
function foldButtons(hidden, columns, makeRows) {
  const buttons = columns.map((column, index) => {
    const button = el("button", "diff-row diff-fold", foldLabel(hidden.length));
    button.type = "button";
    button.setAttribute("aria-expanded", "false");
    if (index > 0) {
      button.tabIndex = -1;
      button.setAttribute("aria-hidden", "true");
    }
    column.append(button);
    return button;
  });
  const expand = () => {
    buttons.forEach((button, index) => {
      const frag = document.createDocumentFragment();
      for (const op of hidden) frag.append(makeRows[index](op));
      button.replaceWith(frag);
    });
  };
  for (const button of buttons) button.addEventListener("click", expand);
}

function sideRow(op, side) {
  if (!op) {
    const filler = el("div", "diff-row diff-filler");
    filler.setAttribute("aria-hidden", "true");
    return filler;
  }
  const row = el("div", `diff-row diff-${op.op}`);
  row.dataset.op = op.op;
  row.append(
    el("span", "diff-ln", String(op[side])),
    el("span", "diff-mark", MARK[op.op]),
    el("span", "diff-text", op.text),
  );
  return row;
}

/**
 * Two aligned columns, a on the left and b on the right: deleted lines marked on the left,
 * added ones on the right facing blank fillers, unchanged runs over 6 lines folded to an
 * expandable "… N unchanged lines".
 */
export function renderSideBySide(aText, bText, { aLabel = "before", bLabel = "after" } = {}) {
  const ops = diffLines(aText, bText);
  const root = el("div", "diff diff-split");
  root.dataset.testid = "diff";
  const head = el("div", "diff-head");
  head.append(el("span", "diff-label diff-label-a", String(aLabel)), summary(ops), el("span", "diff-label diff-label-b", String(bLabel)));
  const body = el("div", "diff-body");
  const left = el("div", "diff-col diff-col-a");
  const right = el("div", "diff-col diff-col-b");
  left.dataset.testid = "diff-a";
  right.dataset.testid = "diff-b";
  left.setAttribute("aria-label", String(aLabel));
  right.setAttribute("aria-label", String(bLabel));
  body.append(left, right);
  root.append(head, body);
  const segs = segments(ops);
  segs.forEach((seg, index) => {
    if (seg.same) {
      const [before, hidden, after] = fold(seg.same, index === 0, index === segs.length - 1);
      for (const op of before) left.append(sideRow(op, "a")), right.append(sideRow(op, "b"));
      if (hidden.length) foldButtons(hidden, [left, right], [(op) => sideRow(op, "a"), (op) => sideRow(op, "b")]);
      for (const op of after) left.append(sideRow(op, "a")), right.append(sideRow(op, "b"));
    } else {
      const rows = Math.max(seg.dels.length, seg.adds.length);
      for (let r = 0; r < rows; r++) {
        left.append(sideRow(seg.dels[r], "a"));
        right.append(sideRow(seg.adds[r], "b"));
      }
    }
  });
  return root;
}

function unifiedRow(op) {
  const row = el("div", `diff-row diff-${op.op}`);
  row.dataset.op = op.op;
  row.append(
    el("span", "diff-ln", op.a === null ? "" : String(op.a)),
    el("span", "diff-ln", op.b === null ? "" : String(op.b)),
    el("span", "diff-mark", MARK[op.op]),
    el("span", "diff-text", op.text),
  );
  return row;
}

/** One column, deletions before additions in each change, both line numbers on every row. */
export function renderUnified(aText, bText, { aLabel, bLabel } = {}) {
  const ops = diffLines(aText, bText);
  const root = el("div", "diff diff-unified");
  root.dataset.testid = "diff";
  const head = el("div", "diff-head");
  if (aLabel !== undefined || bLabel !== undefined) {
    head.append(el("span", "diff-label", `${aLabel ?? "before"} → ${bLabel ?? "after"}`));
  }
  head.append(summary(ops));
  const lines = el("div", "diff-col diff-lines");
  root.append(head, lines);
  const segs = segments(ops);
  segs.forEach((seg, index) => {
    if (seg.same) {
      const [before, hidden, after] = fold(seg.same, index === 0, index === segs.length - 1);
      for (const op of before) lines.append(unifiedRow(op));
      if (hidden.length) foldButtons(hidden, [lines], [unifiedRow]);
      for (const op of after) lines.append(unifiedRow(op));
    } else {
      for (const op of seg.dels) lines.append(unifiedRow(op));
      for (const op of seg.adds) lines.append(unifiedRow(op));
    }
  });
  return root;
}
