// What the groups and items panes share about their lists: a search box that asks the server
// once typing pauses (not once a keystroke), and a listbox's selected row and single Tab stop.

import { h } from "./dom.js";

const SEARCH_PAUSE_MS = 200;

/** A search input; `onSearch(text)` runs when the user has stopped typing for a moment. */
export function searchBox({ testid, placeholder, label, onSearch }) {
  const input = h("input", {
    type: "search",
    class: "search",
    testid,
    placeholder,
    "aria-label": label,
    autocomplete: "off",
    spellcheck: "false",
  });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => onSearch(input.value), SEARCH_PAUSE_MS);
  });
  return input;
}

/** Marks the row `isSelected` picks (aria-selected, .selected) and makes it, or else the first
 * row, the list's one Tab stop: Tab enters the list once, the arrows move inside (keys.js). */
export function markSelected(list, isSelected) {
  let selected = null;
  for (const li of list.children) {
    const on = isSelected(li);
    li.setAttribute("aria-selected", on ? "true" : "false");
    li.classList.toggle("selected", on);
    li.tabIndex = -1;
    if (on) selected = li;
  }
  const stop = selected || list.firstElementChild;
  if (stop) stop.tabIndex = 0;
}
