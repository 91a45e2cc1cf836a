// Modal dialogs on the native <dialog> element: it traps focus, closes on Esc (its `cancel`
// event) and returns focus where it was. Each action runs with its buttons disabled, and an
// error it throws is shown inside the dialog, never as an alert.

import { h } from "./dom.js";

let counter = 0;

/**
 * openDialog({title, testid, body: [nodes], actions: [{label, kind, testid, run}], initial})
 * `run(dialog)` may return false to keep the dialog open; a thrown error's message is shown.
 * Resolves with the label of the action that closed it, or null (cancelled).
 */
export function openDialog({ title, testid = "dialog", body = [], actions = [], initial, wide = false, cancelLabel = "Cancel" }) {
  const id = `dialog-title-${++counter}`;
  const error = h("p", { class: "form-error", role: "alert", testid: "dialog-error", hidden: true });
  const buttons = actions.map((action) =>
    h("button", {
      type: action.submit ? "submit" : "button",
      class: `button ${action.kind || ""}`,
      testid: action.testid,
      disabled: action.disabled,
      text: action.label,
    }),
  );
  const cancel = h("button", { type: "button", class: "button ghost", testid: "dialog-cancel", text: cancelLabel });
  const form = h(
    "form",
    { method: "dialog", class: "dialog-form", novalidate: true },
    h("h2", { id, class: "dialog-title", text: title }),
    h("div", { class: "dialog-body" }, body),
    error,
    h("div", { class: "dialog-actions" }, cancel, buttons),
  );
  const dialog = h("dialog", { class: `dialog ${wide ? "wide" : ""}`, testid, "aria-labelledby": id }, form);
  document.body.append(dialog);

  const handle = {
    el: dialog,
    buttons,
    setError(message) {
      error.textContent = message || "";
      error.hidden = !message;
    },
    close(result = null) {
      if (dialog.open) dialog.close();
      finish(result);
    },
  };

  let settle;
  const done = new Promise((resolve) => (settle = resolve));
  let finished = false;
  function finish(result) {
    if (finished) return;
    finished = true;
    settle(result);
    setTimeout(() => dialog.remove(), 0);
  }

  async function runAction(action) {
    handle.setError("");
    const all = [...buttons, cancel];
    const before = all.map((b) => b.disabled);
    all.forEach((b) => (b.disabled = true));
    dialog.setAttribute("aria-busy", "true");
    try {
      const keep = action.run ? await action.run(handle) : undefined;
      if (keep === false) return;
      handle.close(action.label);
    } catch (e) {
      handle.setError(e && e.message ? e.message : String(e));
    } finally {
      dialog.removeAttribute("aria-busy");
      all.forEach((b, i) => (b.disabled = before[i]));
    }
  }

  buttons.forEach((button, i) => {
    if (!actions[i].submit) button.addEventListener("click", () => runAction(actions[i]));
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const i = actions.findIndex((a) => a.submit);
    if (i >= 0 && !buttons[i].disabled) runAction(actions[i]);
  });
  cancel.addEventListener("click", () => handle.close(null));
  dialog.addEventListener("close", () => finish(null));
  dialog.addEventListener("cancel", (event) => {
    if (dialog.getAttribute("aria-busy")) event.preventDefault();
  });

  dialog.showModal();
  (initial || buttons.find((b) => !b.disabled) || cancel).focus();
  handle.done = done;
  return handle;
}

/** A yes/no question; resolves true when confirmed. */
export async function confirmDialog({ title, message, confirm = "OK", kind = "primary", testid = "confirm-dialog" }) {
  const d = openDialog({
    title,
    testid,
    body: Array.isArray(message) ? message : [h("p", {}, message)],
    actions: [{ label: confirm, kind, testid: "confirm-ok", submit: true }],
  });
  return (await d.done) === confirm;
}

/** A labelled form field. */
export function field(label, control, hint) {
  const id = control.id || `field-${++counter}`;
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
  );
}
