// The items pane's query filter, as a person types it: the CLI's short form `PATH OP VALUE`
// (several joined by `;`, all of which must hold), or the engine's JSON form as is. The
// result is the `where` JSON the API takes; the server judges it (in Redis, on Redis).

import { checkJson, stringify } from "./api.js";

const SYMBOLS = { "==": "eq", "=": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte" };
export const OPERATIONS = [
  "eq", "neq", "gt", "gte", "lt", "lte", "contains", "notContains",
  "startsWith", "endsWith", "in", "isNull", "isNotNull", "exists",
];
const UNARY = new Set(["isNull", "isNotNull", "exists"]);

/** The `where` JSON text for `text`, or null for no filter; throws with a message. */
export function parseFilter(text) {
  const t = text.trim();
  if (!t) return null;
  if (t.startsWith("{") || t.startsWith("[")) {
    const checked = checkJson(t);
    if (checked.error) throw new Error(checked.error);
    return t;
  }
  const filters = t
    .split(";")
    .map((part) => part.trim())
    .filter(Boolean)
    .map(one);
  return stringify(filters.length === 1 ? filters[0] : filters);
}

function one(part) {
  const m = /^(\S+)\s+(\S+)(?:\s+([\s\S]*))?$/.exec(part);
  if (!m) throw new Error(`“${part}”: write PATH OP VALUE, for example: status eq paid`);
  const [, path, written, rest = ""] = m;
  const operation = SYMBOLS[written] || OPERATIONS.find((op) => op.toLowerCase() === written.toLowerCase());
  if (!operation) throw new Error(`“${written}” is not an operation: ${OPERATIONS.join(", ")}, or == != > >= < <=`);
  if (UNARY.has(operation)) {
    if (rest.trim()) throw new Error(`${operation} takes no value (“${rest.trim()}”)`);
    return { valueKey: path, operation };
  }
  if (!rest.trim()) throw new Error(`${operation} needs a value: ${path} ${operation} VALUE`);
  // JSON when it reads as JSON (100, true, "quoted", ["a","b"]), else the text itself.
  const checked = checkJson(rest.trim());
  return { valueKey: path, operation, value: checked.error ? rest.trim() : checked.value };
}
