// The JSON API of spec.md, as the page calls it. Every write carries the two headers the
// server's CSRF guard asks for; every failure becomes an ApiError whose message is the
// server's text for a human (shown in place by the caller).

import { encodeName } from "./names.js";

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
  /** The item as it is now, sent with a 409 (null when it is gone). */
  get current() {
    return this.body && "current" in this.body ? this.body.current : undefined;
  }
}

// Integers past 2^53 are exact in the engine (64-bit); JSON.parse would round them. With the
// reviver's source text they become BigInts, and `stringify` writes them back digit for digit.
function exactReviver(_key, value, context) {
  if (
    typeof value === "number" &&
    !Number.isSafeInteger(value) &&
    context &&
    typeof context.source === "string" &&
    /^-?\d+$/.test(context.source)
  ) {
    return BigInt(context.source);
  }
  return value;
}

export function parseJson(text) {
  return JSON.parse(text, exactReviver);
}

const rawJSON = typeof JSON.rawJSON === "function" ? JSON.rawJSON : null;

export function stringify(value, indent) {
  return JSON.stringify(
    value,
    (_key, v) => (typeof v === "bigint" ? (rawJSON ? rawJSON(v.toString()) : Number(v)) : v),
    indent,
  );
}

/** Checks a user's JSON text; returns {value} or {error: "message with line and column"}. */
export function checkJson(text) {
  if (!text.trim()) return { error: "The value is empty: write JSON (null, a number, \"text\", [..] or {..})." };
  try {
    return { value: parseJson(text) };
  } catch (e) {
    return { error: describeJsonError(text, e) };
  }
}

function describeJsonError(text, e) {
  const found = locateJsonError(text);
  if (!found) return `Not valid JSON: ${String(e && e.message ? e.message : e)}`;
  const before = text.slice(0, found.pos);
  const line = before.split("\n").length;
  const column = found.pos - before.lastIndexOf("\n");
  return `Not valid JSON at line ${line}, column ${column}: ${found.message}.`;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

/**
 * Where a JSON text goes wrong and why, for a message a person can act on (the browser's own
 * says neither line nor column). Returns {pos, message}, or null when it finds nothing.
 */
export function locateJsonError(text) {
  const n = text.length;
  let i = 0;
  const stop = (message) => {
    throw { pos: i, message };
  };
  const shown = () => (i >= n ? "the end of the text" : `“${String.fromCodePoint(text.codePointAt(i))}”`);
  const space = () => {
    while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const string = () => {
    i++;
    while (i < n) {
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === "u" && ((HEX4.lastIndex = i + 2), HEX4.test(text))) i += 6;
        else stop("a backslash starts an escape that JSON does not have");
        continue;
      }
      if (c < " ") stop("a control character (a line break?) inside a string; write it as \\n");
      i++;
    }
    stop('a string is not closed (a " is missing)');
  };
  const container = (close, member) => {
    i++;
    space();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      member();
      space();
      if (text[i] === ",") {
        i++;
        space();
        if (text[i] === close) stop(`a comma before “${close}” (JSON has no trailing commas)`);
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      stop(`expected “,” or “${close}”, found ${shown()}`);
    }
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      return container("}", () => {
        space();
        if (text[i] === "'") stop("keys need double quotes (\"), not single ones");
        if (text[i] !== '"') stop(`expected a "quoted" key, found ${shown()}`);
        string();
        space();
        if (text[i] !== ":") stop(`expected “:” after the key, found ${shown()}`);
        i++;
        value();
      });
    }
    if (c === "[") return container("]", value);
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m || m[0] === "-") stop("a malformed number");
      i += m[0].length;
      return;
    }
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    if (text.startsWith("NaN", i) || text.startsWith("Infinity", i)) stop("NaN and Infinity are not JSON");
    if (c === "'") stop("strings need double quotes (\"), not single ones");
    stop(`expected a value, found ${shown()}`);
  };
  try {
    value();
    space();
    if (i < n) stop(`more text after the value: ${shown()}`);
    return null;
  } catch (e) {
    if (e && typeof e.pos === "number") return e;
    return null; // nested past the stack: the browser's message will do
  }
}

/** The query string, each name byte for byte (names.js): never URLSearchParams, which would
 * make a byte that is not UTF-8 into U+FFFD and so ask about another item. */
export function queryString(query) {
  const pairs = [];
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") {
      pairs.push(`${encodeName(name)}=${encodeName(String(value))}`);
    }
  }
  return pairs.length ? `?${pairs.join("&")}` : "";
}

export async function request(method, path, { query, body, rawBody, signal } = {}) {
  const url = new URL(path, location.origin);
  try {
    url.search = queryString(query);
  } catch (e) {
    throw new ApiError(0, "InvalidName", `This name cannot be sent: ${e.message}.`);
  }
  const init = {
    method,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
    signal,
  };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-Motia-State"] = "1";
    if (rawBody !== undefined) init.body = rawBody;
    else if (body !== undefined) init.body = stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "NetworkError", "The inspector's server does not answer. Is `motia-state ui` still running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : null;
    const type = (error && error.type) || `HTTP ${response.status}`;
    let message = (error && error.message) || `The server answered ${response.status} ${response.statusText}.`;
    if (response.status === 401) message = unauthorized(message);
    throw new ApiError(response.status, type, message, data);
  }
  if (data === null || typeof data !== "object") {
    throw new ApiError(response.status, "BadResponse", "The server's answer was not the JSON the page expects.");
  }
  return data;
}

function unauthorized(message) {
  return `${message} Open the address \`motia-state ui\` printed when it started (it carries the token).`;
}

export const api = {
  info: () => request("GET", "/api/info"),
  groups: (search) => request("GET", "/api/groups", { query: { search } }),
  items: (query, signal) => request("GET", "/api/items", { query, signal }),
  item: (group, key) => request("GET", "/api/item", { query: { group, key } }),
  history: (group, key, before, limit = 20) =>
    request("GET", "/api/history", { query: { group, key, before, limit } }),
  // `raw`: the editor's text as typed; the server parses it exactly (64-bit integers intact).
  put: (group, key, raw, version, ttl) =>
    request("PUT", "/api/item", { body: { group, key, raw, version, ttl: ttl ?? null } }),
  remove: (group, key, version) => request("DELETE", "/api/item", { query: { group, key, version } }),
  increment: (group, key, by, version) =>
    request("POST", "/api/increment", { body: { group, key, by, version } }),
  update: (group, key, opsText, version) =>
    request("POST", "/api/update", { rawBody: opsBody(group, key, opsText, version) }),
  ttl: (group, key, ttl) => request("POST", "/api/ttl", { body: { group, key, ttl } }),
  clear: (group, confirm) => request("POST", "/api/clear", { body: { group, confirm } }),
  metrics: () => request("GET", "/api/metrics"),
  expiries: (group) => request("GET", "/api/expiries", { query: { group } }),
};

function opsBody(group, key, opsText, version) {
  const head = stringify({ group, key, version });
  return `${head.slice(0, -1)},"ops":${opsText}}`;
}
