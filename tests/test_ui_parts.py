"""The inspector's page parts (static/tree.js, diff.js, charts.js) in a real browser.

They are ES modules, so they run where they will run: Debian's chromium through Playwright
(never a browser Playwright downloads), loading them over http from the static folder as the
page does. Python checks what they return against its own reference (a diff applied line by
line, an LCS length), and the DOM they build against hostile input: text must stay text.
"""

from __future__ import annotations

import functools
import http.server
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .ui_browser_support import ROOT, chromium, keep_screenshot, sync_api

Browser = sync_api.Browser
Page = sync_api.Page
STATIC = ROOT / "engine" / "motia_state" / "ui" / "static"
TEST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>parts</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/parts.css">
<style>body { font-family: system-ui, sans-serif; margin: 16px; }</style>
</head><body><main id="out"></main></body></html>
"""
# What the hostile inputs would do if they ever became markup.
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
    "</div><img src=x onerror=window.__pwned=1>",
    "__proto__",
    "&lt;b&gt; &amp;",
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The static folder at /static/ beside a blank test page at /, over http on loopback."""
    root = tmp_path_factory.mktemp("ui_parts")
    (root / "static").symlink_to(STATIC, target_is_directory=True)
    (root / "index.html").write_text(TEST_PAGE, encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shared_page(browser: Browser, site: str) -> Iterator[tuple[Page, list[str]]]:
    """One tab for the module; every error it logs or throws is kept for the test to check."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.goto(site)
    yield page, errors
    page.close()


@pytest.fixture
def page(shared_page: tuple[Page, list[str]], site: str) -> Iterator[Page]:
    """A freshly loaded test page; the test fails if the page threw or logged an error."""
    tab, errors = shared_page
    errors.clear()
    tab.goto(site)
    yield tab
    assert not tab.evaluate("window.__pwned"), "hostile text ran as markup"
    assert errors == []


# ---------------------------------------------------------------- references in Python


def split_lines(text: str) -> list[str]:
    return [] if text == "" else text.split("\n")


def check_script(a_text: str, b_text: str, ops: list[dict[str, Any]]) -> int:
    """Check that ops turn a into b, with consecutive 1-based line numbers; return #same."""
    a, b = split_lines(a_text), split_lines(b_text)
    rebuilt: list[str] = []
    ai = 0
    for op in ops:
        assert op["op"] in ("same", "del", "add"), op
        if op["op"] == "add":
            assert (op["a"], op["b"]) == (None, len(rebuilt) + 1), op
            rebuilt.append(op["text"])
            continue
        assert (op["a"], op["text"]) == (ai + 1, a[ai]), op
        ai += 1
        if op["op"] == "same":
            assert op["b"] == len(rebuilt) + 1, op
            rebuilt.append(op["text"])
        else:
            assert op["b"] is None, op
    assert ai == len(a), "not every line of a was accounted for"
    assert rebuilt == b
    return sum(op["op"] == "same" for op in ops)


def lcs_length(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev_diag = 0
        for j, y in enumerate(b, 1):
            keep = row[j]
            row[j] = prev_diag + 1 if x == y else max(row[j], row[j - 1])
            prev_diag = keep
    return row[-1]


DIFF_MANY = """async (cases) => {
  const { diffLines } = await import('/static/diff.js');
  return cases.map(([a, b]) => diffLines(a, b));
}"""


def diff_many(page: Page, cases: list[tuple[str, str]]) -> list[list[dict[str, Any]]]:
    result: list[list[dict[str, Any]]] = page.evaluate(DIFF_MANY, [list(c) for c in cases])
    return result


# ---------------------------------------------------------------- diffLines


HAND_CASES = [
    ("", ""),
    ("a", "a"),
    ("a\nb\nc", "a\nb\nc"),
    ("", "a\nb"),
    ("a\nb", ""),
    ("a\nb\nc", "x\ny\nz"),
    ("1\n2\n3\n4\n5\n6\n7", "5\n6\n7\n1\n2\n3\n4"),  # a moved block
    ("a\n", "a"),  # only the trailing newline differs
    ("a", "a\n"),
    ("\n", ""),
    ("\n\n", "\n"),
    ("a\r\nb\r\n", "a\nb\n"),
    ("x\nx\nx\ny", "y\nx\nx\nx"),
    ("\n".join(HOSTILE), "\n".join(reversed(HOSTILE))),
    ('{\n  "a": 1,\n  "b": 2\n}', '{\n  "a": 1,\n  "b": 3,\n  "c": [\n    1\n  ]\n}'),
]


def test_diff_hand_cases_turn_a_into_b_keeping_most_lines(page: Page) -> None:
    for (a, b), ops in zip(HAND_CASES, diff_many(page, HAND_CASES), strict=True):
        same = check_script(a, b, ops)
        assert same == lcs_length(split_lines(a), split_lines(b)), (a, b, ops)


def test_diff_exact_ops_deletions_before_additions(page: Page) -> None:
    [ops] = diff_many(page, [("a\nb\nc\nd", "a\nx\ny\nc\nd\ne")])
    assert [(o["op"], o["a"], o["b"], o["text"]) for o in ops] == [
        ("same", 1, 1, "a"),
        ("del", 2, None, "b"),
        ("add", None, 2, "x"),
        ("add", None, 3, "y"),
        ("same", 3, 4, "c"),
        ("same", 4, 5, "d"),
        ("add", None, 6, "e"),
    ]
    [ops] = diff_many(page, [("", "")])
    assert ops == []


LINE = st.one_of(
    st.sampled_from(["a", "b", "c", "", " ", "}", "<b>", "é", "\r", "__proto__"]),
    st.text(max_size=3),
)
TEXT = st.lists(LINE, max_size=12).map("\n".join)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=40))
def test_diff_property_applies_and_is_minimal(page: Page, cases: list[tuple[str, str]]) -> None:
    for (a, b), ops in zip(cases, diff_many(page, cases), strict=True):
        same = check_script(a, b, ops)
        assert same == lcs_length(split_lines(a), split_lines(b)), (a, b, ops)


def test_diff_large_and_far_apart_inputs_stay_correct(page: Page) -> None:
    # > 5,000 lines each (the cheaper anchored diff), few edits: most lines kept.
    big_a = [f"line {i}" for i in range(6000)]
    big_b = list(big_a)
    for i in range(0, 6000, 150):
        big_b[i] = f"changed {i}"
    del big_b[3000:3010]
    big_b[4000:4000] = ["inserted"] * 7
    # Far apart (edit distance over the Myers bound) within the size Myers would take:
    # every other line differs, some lines repeated so not everything is an anchor.
    far_a = ["x" if i % 7 == 0 else f"k{i}" for i in range(1500)]
    far_b = [line if i % 2 else f"other {i}" for i, line in enumerate(far_a)]
    # Nothing in common, and everything repeated (no anchors at all).
    disjoint = ("\n".join(["a"] * 3000), "\n".join(["b"] * 3000))
    # Lines after the last anchor are repeated ones (no anchor) that must still be kept.
    tail_a = [f"u{i}" for i in range(6000)] + ["dup"] * 20 + ["end a"]
    tail_b = [f"v{i}" if i % 100 == 0 else f"u{i}" for i in range(6000)] + ["dup"] * 20
    cases = [
        ("\n".join(tail_a), "\n".join([*tail_b, "end b"])),
        ("\n".join(big_a), "\n".join(big_b)),
        ("\n".join(far_a), "\n".join(far_b)),
        disjoint,
        ("\n".join(reversed(big_a)), "\n".join(big_a)),
    ]
    # Few distinct lines, far apart (D > 1000): no anchors, Myers gives up, and the longest
    # common subsequence is still found (linear-space LCS up to 5,000 x 5,000 lines).
    rng = random.Random(20)
    few_a = [f"l{rng.randrange(20)}" for _ in range(1100)]
    few_b = [f"l{rng.randrange(20)}" for _ in range(1000)]
    cases.append(("\n".join(few_a), "\n".join(few_b)))
    results = diff_many(page, cases)
    for (a, b), ops in zip(cases, results, strict=True):
        check_script(a, b, ops)
    same = [sum(o["op"] == "same" for o in ops) for ops in results]
    # Each of these is the longest common subsequence: the anchors lose nothing here.
    assert same[:4] == [6000 - 60 + 20, 6000 - 40 - 9, 750, 0]  # line 3000: changed, deleted
    assert same[4] >= 1
    best = lcs_length(few_a, few_b)
    assert len(few_a) + len(few_b) - 2 * best > 1000  # past the Myers bound indeed
    assert same[5] == best


# ---------------------------------------------------------------- side by side, unified

RENDER_DIFF = """async ([a, b, mode]) => {
  const diff = await import('/static/diff.js');
  const before = document.querySelectorAll('script, img').length;
  const node = mode === 'split'
    ? diff.renderSideBySide(a, b, {aLabel: 'mine <b>', bLabel: 'theirs'})
    : diff.renderUnified(a, b);
  document.getElementById('out').append(node);
  return before;
}"""


def rows(page: Page, selector: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = page.eval_on_selector_all(
        selector,
        """rows => rows.map(r => ({
          cls: r.className,
          ln: [...r.querySelectorAll('.diff-ln')].map(n => n.textContent).join('|'),
          mark: r.querySelector('.diff-mark')?.textContent ?? '',
          text: r.querySelector('.diff-text')?.textContent ?? r.textContent,
          top: String(r.offsetTop),
        }))""",
    )
    return result


def test_side_by_side_marks_aligns_and_keeps_text(page: Page) -> None:
    a_lines = [f"line {i}" for i in range(1, 31)]
    b_lines = list(a_lines)
    b_lines[7] = HOSTILE[0]  # line 8 changed: 7 unchanged lines before it
    del b_lines[14]  # line 15 deleted: 6 unchanged lines between (not folded)
    b_lines += HOSTILE[1:3]  # two added at the end
    before = page.evaluate(RENDER_DIFF, ["\n".join(a_lines), "\n".join(b_lines), "split"])
    assert page.evaluate("document.querySelectorAll('script, img').length") == before
    assert page.inner_text("[data-testid=diff] .diff-label-a") == "mine <b>"
    left = rows(page, "[data-testid=diff-a] > *")
    right = rows(page, "[data-testid=diff-b] > *")
    assert len(left) == len(right)
    assert [r["top"] for r in left] == [r["top"] for r in right], "columns out of line"
    dels = [(r["ln"], r["mark"], r["text"]) for r in left if "diff-del" in r["cls"]]
    adds = [(r["ln"], r["mark"], r["text"]) for r in right if "diff-add" in r["cls"]]
    assert dels == [("8", "-", "line 8"), ("15", "-", "line 15")]
    assert adds == [("8", "+", HOSTILE[0]), ("30", "+", HOSTILE[1]), ("31", "+", HOSTILE[2])]
    assert not [r for r in right if "diff-del" in r["cls"]]
    assert not [r for r in left if "diff-add" in r["cls"]]
    # Facing each deletion on the right (and each addition on the left): a filler or a pair.
    for lrow, rrow in zip(left, right, strict=True):
        if "diff-del" in lrow["cls"]:
            assert "diff-add" in rrow["cls"] or "diff-filler" in rrow["cls"]
    # Runs over 6 unchanged lines are folded, keeping 3 lines of context by each change.
    folds = [(r["text"], left[i + 1]["ln"]) for i, r in enumerate(left) if "diff-fold" in r["cls"]]
    assert folds == [("… 4 unchanged lines", "5"), ("… 9 unchanged lines", "28")]
    # fold, 3 context, changed pair, 6 unchanged, deletion, 3 context, fold, 3 context, 2
    # fillers facing the additions at the end
    assert len(left) == 1 + 3 + 1 + 6 + 1 + 3 + 1 + 3 + 2
    page.locator("[data-testid=diff-b] .diff-fold").first.click()
    page.locator("[data-testid=diff-a] .diff-fold").first.click()
    left = rows(page, "[data-testid=diff-a] > *")
    right = rows(page, "[data-testid=diff-b] > *")
    assert not [r for r in left + right if "diff-fold" in r["cls"]]
    assert [r["ln"] for r in left if r["ln"]] == [str(i) for i in range(1, 31)]
    assert [r["text"] for r in right if r["ln"]] == b_lines
    assert [r["top"] for r in left] == [r["top"] for r in right]


def test_unified_marks_rows_and_unfolds(page: Page) -> None:
    a = "\n".join(f"l{i}" for i in range(1, 21))
    b = a.replace("l10", HOSTILE[1]) + "\nend"
    before = page.evaluate(RENDER_DIFF, [a, b, "unified"])
    assert page.evaluate("document.querySelectorAll('script, img').length") == before
    got = rows(page, "[data-testid=diff] .diff-lines > *")
    changed = [(r["ln"], r["mark"], r["text"]) for r in got if "diff-same" not in r["cls"]]
    assert changed == [
        ("", "", "… 6 unchanged lines"),
        ("10|", "-", "l10"),
        ("|10", "+", HOSTILE[1]),
        ("", "", "… 4 unchanged lines"),
        ("|21", "+", "end"),
    ]
    page.locator(".diff-fold").first.click()
    page.locator(".diff-fold").first.click()
    got = rows(page, "[data-testid=diff] .diff-lines > *")
    assert len(got) == 22
    assert not [r for r in got if "diff-fold" in r["cls"]]
    assert page.inner_text(".diff-summary") == "\u22121 +2"  # a minus sign


def test_identical_texts_say_so(page: Page) -> None:
    text = "\n".join(str(i) for i in range(50))
    page.evaluate(RENDER_DIFF, [text, text, "split"])
    assert page.inner_text(".diff-summary") == "no differences"
    assert page.locator("[data-testid=diff-a] > *").all_inner_texts() == ["… 50 unchanged lines"]
    page.locator("[data-testid=diff-a] .diff-fold").click()
    assert page.locator("[data-testid=diff-b] .diff-same").count() == 50


# ---------------------------------------------------------------- tree

RENDER_TREE = """async ([json, options]) => {
  const { renderTree } = await import('/static/tree.js');
  const before = document.querySelectorAll('script, img').length;
  const node = renderTree(JSON.parse(json), options);
  document.getElementById('out').append(node);
  return before;
}"""


def render_tree(page: Page, json_text: str, **options: Any) -> int:
    before: int = page.evaluate(RENDER_TREE, [json_text, options])
    return before


def paths(page: Page) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        ".tree [data-path]", "n => n.map(e => e.dataset.path)"
    )
    return found


def node(page: Page, path: str) -> Any:
    quoted = path.replace("\\", "\\\\").replace('"', '\\"')
    return page.locator(f'.tree-node[data-path="{quoted}"]')


def test_tree_keys_types_sizes_and_paths(page: Page) -> None:
    value = (
        '{"a": {"b": [10, 20, {"c": "x"}], "f": false}, "odd key": null, "t": true,'
        ' "n": -1.5e3, "__proto__": {"polluted": 1}, "e": {}, "l": []}'
    )
    render_tree(page, value)
    # depth 0 and 1 open, depth 2 (a.b) collapsed and not even built
    assert paths(page) == [
        "", "a", "a.b", "a.f", '["odd key"]', "t", "n", "__proto__", "__proto__.polluted", "e", "l",
    ]  # fmt: skip
    assert page.evaluate("({}).polluted") is None
    assert node(page, "").locator("> .tree-row .tree-size").inner_text() == "{7 keys}"
    ab = node(page, "a.b").locator("> .tree-row > .tree-toggle")
    assert ab.get_attribute("aria-expanded") == "false"
    assert ab.locator(".tree-key").inner_text() == "b"
    assert ab.locator(".tree-size").inner_text() == "[3]"
    assert ab.locator(".tree-preview").inner_text() == "[10, 20, {…}]"
    assert node(page, "e").locator(".tree-size").inner_text() == "{0 keys}"
    assert node(page, "a.f").locator(".tree-bool").inner_text() == "false"
    assert node(page, '["odd key"]').locator(".tree-key").inner_text() == "odd key"
    assert node(page, '["odd key"]').locator(".tree-null").inner_text() == "null"
    assert node(page, "n").locator(".tree-number").inner_text() == "-1500"
    assert node(page, "t").get_attribute("data-type") == "bool"
    ab.click()
    assert ab.get_attribute("aria-expanded") == "true"
    assert ab.locator(".tree-preview").is_hidden()
    assert paths(page)[3:7] == ["a.b[0]", "a.b[1]", "a.b[2]", "a.f"]  # a.b[2] is deeper
    node(page, "a.b[2]").locator(".tree-toggle").click()
    assert node(page, "a.b[2].c").locator(".tree-string").inner_text() == '"x"'
    ab.click()
    assert ab.get_attribute("aria-expanded") == "false"
    assert node(page, "a.b[0]").is_hidden()


def test_tree_keyboard(page: Page) -> None:
    render_tree(page, '{"a": {"b": {"c": 1}}, "z": 2}', collapsedDepth=1)
    a = node(page, "a").locator("> .tree-row > .tree-toggle")
    root = node(page, "").locator("> .tree-row > .tree-toggle")
    assert a.get_attribute("aria-expanded") == "false"
    a.focus()
    page.keyboard.press("Enter")
    assert a.get_attribute("aria-expanded") == "true"
    page.keyboard.press(" ")
    assert a.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowRight")
    assert a.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowRight")  # open already: to the first child
    focused = "document.activeElement.closest('.tree-node').dataset.path"
    assert page.evaluate(focused) == "a.b"
    page.keyboard.press("ArrowDown")  # a.b is collapsed: its children are skipped
    assert page.evaluate(focused) == "z"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == "a.b.c"
    page.keyboard.press("ArrowLeft")  # a leaf: to its parent
    assert page.evaluate(focused) == "a.b"
    page.keyboard.press("ArrowLeft")  # open: collapse
    assert (
        node(page, "a.b").locator("> .tree-row > .tree-toggle").get_attribute("aria-expanded")
        == "false"
    )
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == "a"
    page.keyboard.press("Home")
    assert page.evaluate(focused) == ""
    page.keyboard.press("ArrowLeft")
    assert root.get_attribute("aria-expanded") == "false"
    assert node(page, "a").is_hidden()


def test_tree_show_more_and_copy_path(page: Page) -> None:
    render_tree(page, str(list(range(450))))
    more = page.locator(".tree-show-more")
    assert page.locator(".tree-leaf").count() == 200
    assert more.inner_text() == "show 200 more of 250"
    more.click()
    assert page.locator(".tree-leaf").count() == 400
    assert more.inner_text() == "show 50 more"
    more.click()
    assert page.locator(".tree-leaf").count() == 450
    assert more.count() == 0
    assert paths(page)[-1] == "[449]"
    assert node(page, "[449]").locator(".tree-number").inner_text() == "449"
    page.evaluate(
        """() => document.addEventListener('tree-copy', e => { window.__copied = e.detail.path })"""
    )
    node(page, "[7]").locator(".tree-row").hover()
    node(page, "[7]").locator(".tree-copy").click()
    assert page.evaluate("window.__copied") == "[7]"
    node(page, "[8]").locator(".tree-row").focus()
    page.keyboard.press("c")
    assert page.evaluate("window.__copied") == "[8]"
    page.evaluate("document.getElementById('out').replaceChildren()")
    render_tree(page, '{"k": [' + ",".join(["{}"] * 25) + "]}", maxChildren=10)
    assert node(page, "k").locator(".tree-show-more").inner_text() == "show 10 more of 15"


def test_tree_deep_nesting_renders_lazily_without_recursion(page: Page) -> None:
    deep = '{"n": ' * 500 + "1" + "}" * 500
    render_tree(page, deep)
    assert page.locator(".tree-node").count() == 3  # root, n, n.n (collapsed, unbuilt below)
    assert paths(page)[-1] == "n.n"
    # Everything open, 500 levels on the page and 5,000 off it: no stack overflow.
    got = page.evaluate(
        """async (deep) => {
          const { renderTree } = await import('/static/tree.js');
          const shown = renderTree(JSON.parse(deep), {collapsedDepth: Infinity});
          document.getElementById('out').append(shown);
          let v = 1;
          for (let i = 0; i < 5000; i++) v = [v];
          const huge = renderTree(v, {collapsedDepth: Infinity});
          return [shown.querySelectorAll('.tree-node').length,
                  huge.querySelectorAll('.tree-node').length,
                  huge.querySelectorAll('.tree-node')[5000].dataset.path.length];
        }""",
        deep,
    )
    assert got == [501, 5001, len("[0]") * 5000]


def test_tree_hostile_keys_and_strings_stay_text(page: Page) -> None:
    import json

    long = "<script>x</script>" + "y" * 1_000_000
    value = {h: h for h in HOSTILE} | {"line\nbreak": 'tab\tquote"', "long": long}
    before = render_tree(page, json.dumps(value))
    assert page.evaluate("document.querySelectorAll('script, img').length") == before
    for h in HOSTILE:
        leaf = node(page, "__proto__" if h == "__proto__" else f"[{json.dumps(h)}]")
        assert leaf.locator(".tree-string").inner_text() == json.dumps(h, ensure_ascii=False)
    keys = page.locator(".tree-leaf .tree-key").all_inner_texts()
    # shown bare unless a quote, a control or an edge space would make it ambiguous
    assert keys[:5] == [json.dumps(h) if '"' in h else h for h in HOSTILE]
    assert keys[1] == json.dumps(HOSTILE[1])
    assert keys[5] == '"line\\nbreak"'
    assert node(page, '["line\\nbreak"]').locator(".tree-string").inner_text() == (
        '"tab\\tquote\\""'
    )
    text = node(page, "long").locator(".tree-string")
    assert len(text.inner_text()) == 302 + 1  # quotes, 300 characters and "…"
    toggle = node(page, "long").locator(".tree-show-all")
    assert toggle.inner_text() == "…show all"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert text.evaluate("n => n.textContent.length") == len(long) + 2
    toggle.click()
    assert len(text.inner_text()) == 303


# ---------------------------------------------------------------- charts

CHART = """async ([kind, data, options]) => {
  const charts = await import('/static/charts.js');
  const before = document.querySelectorAll('script, img').length;
  const svg = kind === 'bar' ? charts.barChart(data, options) : charts.lineChart(data, options);
  document.getElementById('out').append(svg);
  const num = (node, name) => Number(node?.getAttribute(name));
  const bad = [...svg.querySelectorAll('*'), svg].flatMap(
    e => [...e.attributes].filter(a => /NaN|Infinity|undefined|null/.test(a.value))
      .map(a => `${e.tagName} ${a.name}=${a.value}`));
  return {
    before, bad,
    role: svg.getAttribute('role'),
    label: svg.getAttribute('aria-label'),
    title: svg.querySelector(':scope > title').textContent,
    bars: svg.querySelectorAll('.chart-bar').length,
    widths: [...svg.querySelectorAll('.chart-bar')].map(b => Number(b.getAttribute('width'))),
    labels: [...svg.querySelectorAll('.chart-label')].map(t => t.textContent),
    tips: [...svg.querySelectorAll('.chart-row > title')].map(t => t.textContent),
    values: [...svg.querySelectorAll('.chart-value')].map(t => t.textContent),
    more: svg.querySelector('.chart-more')?.textContent ?? null,
    empty: svg.querySelector('.chart-empty')?.textContent ?? null,
    ticks: [...svg.querySelectorAll('.chart-tick')].map(t => t.textContent),
    last: svg.querySelector('.chart-last')?.textContent ?? null,
    lines: svg.querySelectorAll('.chart-line').length,
    dots: svg.querySelectorAll('.chart-dot').length,
    dot: [...svg.querySelectorAll('.chart-dot')].map(c => [num(c, 'cx'), num(c, 'cy')]),
    gridY: [...svg.querySelectorAll('.chart-grid:not(.chart-grid-x)')].map(l => num(l, 'y1')),
    plotX: ['x1', 'x2'].map(a => num(svg.querySelector('.chart-grid'), a)),
    gridX: [...svg.querySelectorAll('.chart-grid-x')].map(l => num(l, 'x1')),
    path: svg.querySelector('.chart-line')?.getAttribute('d') ?? null,
    box: [svg.getBoundingClientRect().width, svg.getBoundingClientRect().height],
  };
}"""


def chart(page: Page, kind: str, data: Any, **options: Any) -> dict[str, Any]:
    got: dict[str, Any] = page.evaluate(CHART, [kind, data, options])
    assert got["bad"] == [], got["bad"]
    assert got["role"] == "img"
    assert got["label"]
    assert got["title"]
    assert got["box"][0] > 0
    assert got["box"][1] > 0
    assert page.evaluate("document.querySelectorAll('script, img').length") == got["before"]
    return got


def test_bar_chart_zero_one_and_many_bars(page: Page) -> None:
    empty = chart(page, "bar", [], title="Items per group")
    assert empty["bars"] == 0
    assert empty["empty"] == "no data"
    assert empty["label"] == "Items per group: no data"
    one = chart(page, "bar", [{"label": HOSTILE[1], "value": 0}], title="t", unit="items")
    [label] = one["labels"]
    assert label.endswith("…")
    assert HOSTILE[1].startswith(label[:-1])
    assert len(label) > 12
    assert one["tips"] == [f"{HOSTILE[1]}: 0 items"]
    assert one["values"] == ["0 items"]
    assert one["widths"] == [0]
    data = [{"label": f"group {i}", "value": i * 10} for i in range(200)]
    data[3]["label"] = HOSTILE[0]
    data[3]["value"] = 5000
    many = chart(page, "bar", data, title="Items per group", width=600)
    assert many["bars"] == 15
    assert many["more"] == "+185 more"
    assert many["tips"][0] == f"{HOSTILE[0]}: 5,000"
    assert many["values"][0] == "5,000"
    assert HOSTILE[0].startswith(many["labels"][0].rstrip("…"))
    assert many["labels"][1:3] == ["group 199", "group 198"]
    assert many["widths"][0] == max(many["widths"])
    assert many["widths"] == sorted(many["widths"], reverse=True)
    assert many["label"].startswith(f"Items per group, 200 bars: {HOSTILE[0]} 5,000, group 199")
    # Under the limit the caller's order stands (expiry buckets read in their order).
    buckets = ["< 1 min", "1\u20135 min", "5\u201360 min", "1\u201324 h", "> 24 h"]  # en dashes
    order = chart(page, "bar", [{"label": b, "value": 5 - i} for i, b in enumerate(buckets)])
    assert order["labels"] == buckets
    assert order["more"] is None
    pair = chart(page, "bar", [{"label": "a", "value": 1}, {"label": "b", "value": 2}],
                 unit=["item", "items"])  # fmt: skip
    assert pair["values"] == ["1 item", "2 items"]
    odd = chart(page, "bar", [{"label": None, "value": "x"}, {"value": float("nan")}, 7])
    assert odd["bars"] == 2
    assert odd["values"] == ["0", "0"]


def test_line_chart_empty_one_point_zeros_and_a_window(page: Page) -> None:
    now = 1_700_000_000
    empty = chart(page, "line", [], title="Changes per second")
    assert empty["empty"] == "no data"
    assert empty["lines"] == 0
    one = chart(page, "line", [[now, 3]], unit="/s")
    assert one["dots"] == 1
    assert one["lines"] == 0
    assert one["last"] == "3 /s"
    zeros = chart(page, "line", [[now - 299 + i, 0] for i in range(300)], unit="/s")
    assert zeros["lines"] == 1
    assert zeros["last"] == "0 /s"
    assert zeros["ticks"][:3] == ["0", "0.5", "1"]
    series = [[now - 299 + i, (i * 7) % 23] for i in range(300)]
    series[-1][1] = 17
    full = chart(page, "line", series, title="Changes per second", unit="/s", now=now, span=300)
    assert full["lines"] == 1
    assert full["last"] == "17 /s"
    assert full["ticks"] == ["0", "12.5", "25", "now", "-1m", "-2m", "-3m", "-4m", "-5m"]
    assert full["label"] == "Changes per second: last 17 /s, peak 22 /s over the last 5m"
    # Geometry: the grid runs 0 (bottom) to 25 (top), "now" on the right, -5m on the left;
    # the last point sits at 17/25 of the height on the "now" line, the first at 0 on -5m
    # (a point at now - 299 s: 1/300 in from the left).
    zero, _, top = full["gridY"]
    now_x, *_, left_x = full["gridX"]
    [(cx, cy)] = full["dot"]
    assert zero > top
    assert [left_x, now_x] == full["plotX"]
    assert cx == pytest.approx(now_x, abs=0.01)
    assert cy == pytest.approx(zero - (zero - top) * 17 / 25, abs=0.02)
    first = full["path"].split()[0]
    assert first.startswith("M")
    fx, fy = map(float, first[1:].split(","))
    assert fx == pytest.approx(left_x + (now_x - left_x) / 300, abs=0.02)
    assert fy == pytest.approx(zero, abs=0.01)
    long = page.evaluate(
        """async () => {
          const { lineChart } = await import('/static/charts.js');
          const points = Array.from({length: 500000}, (_, i) => [i, i % 1000]);
          return lineChart(points, {span: 500000}).querySelector('.chart-last').textContent;
        }"""
    )
    assert long == "999"
    odd = chart(page, "line", [[now, float("inf")], "x", [None, 1], [now, -2], [now + 1, 2]])
    assert odd["lines"] == 1
    assert odd["last"] == "2"


# ---------------------------------------------------------------- all three, and the sources


def test_screenshot_of_all_three(page: Page) -> None:
    page.evaluate(
        """async () => {
          const { renderTree } = await import('/static/tree.js');
          const diff = await import('/static/diff.js');
          const charts = await import('/static/charts.js');
          const out = document.getElementById('out');
          const item = {user: {name: 'Ada <admin>', roles: ['owner', 'dev'], age: 36},
                        cart: Array.from({length: 4}, (_, i) => ({sku: `s-${i}`, qty: i + 1})),
                        note: null, active: true};
          out.append(renderTree(item));
          const mine = JSON.stringify(item, null, 2);
          const theirs = JSON.stringify({...item, active: false, note: 'seen'}, null, 2);
          out.append(diff.renderSideBySide(mine, theirs, {aLabel: 'yours', bLabel: 'theirs (v8)'}));
          out.append(diff.renderUnified(mine, theirs));
          out.append(charts.barChart([{label: 'orders', value: 1200}, {label: 'carts', value: 310},
            {label: 'sessions', value: 95}], {title: 'Items per group', unit: 'items'}));
          const now = 1700000000;
          out.append(charts.lineChart(Array.from({length: 300}, (_, i) =>
            [now - 299 + i, Math.round(6 + 5 * Math.sin(i / 17))]),
            {title: 'Changes', unit: '/s'}));
        }"""
    )
    image = keep_screenshot(page, "parts", full_page=True)
    assert image[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["tree.js", "diff.js", "charts.js"])
def test_sources_never_write_markup(name: str) -> None:
    source = (STATIC / name).read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on", "http://", "https://"):  # fmt: skip
        if sink == "http://" and "http://www.w3.org/2000/svg" in source:
            source = source.replace("http://www.w3.org/2000/svg", "")
        assert sink not in source, f"{name} uses {sink}"


def test_theme_custom_properties_reach_the_parts(page: Page) -> None:
    styles = """async (themed) => {
      const charts = await import('/static/charts.js');
      const diff = await import('/static/diff.js');
      const { renderTree } = await import('/static/tree.js');
      const out = document.getElementById('out');
      out.removeAttribute('style');
      if (themed) {
        for (const [name, value] of Object.entries({'--chart-bar': 'rgb(1, 2, 3)',
            '--chart-line': 'rgb(4, 5, 6)', '--chart-grid': 'rgb(7, 8, 9)',
            '--chart-text': 'rgb(10, 11, 12)', '--diff-del': 'rgb(13, 14, 15)',
            '--diff-line': 'rgb(16, 17, 18)', '--tree-string': 'rgb(19, 20, 21)'})) {
          out.style.setProperty(name, value);
        }
      }
      out.append(charts.barChart([{label: 'a', value: 1}]),
                 charts.lineChart([[1, 1], [2, 2]]), diff.renderUnified('a', 'b'),
                 renderTree({s: 'x'}));
      const css = (selector, property) =>
        getComputedStyle(out.querySelector(selector)).getPropertyValue(property);
      const got = [css('.chart-bar', 'fill'), css('.chart-line', 'stroke'),
        css('.chart-grid', 'stroke'), css('.chart text', 'fill'),
        css('.diff-del', 'background-color'), css('.diff-ln', 'color'),
        css('.tree-string', 'color')];
      out.replaceChildren();
      return got;
    }"""
    themed = page.evaluate(styles, True)
    assert themed == [f"rgb({i}, {i + 1}, {i + 2})" for i in range(1, 20, 3)]
    fallback = page.evaluate(styles, False)
    assert fallback[:3] == ["rgb(79, 127, 217)", "rgb(60, 141, 111)", "rgba(128, 128, 128, 0.25)"]
    assert fallback[4] == "rgba(220, 60, 60, 0.16)"
