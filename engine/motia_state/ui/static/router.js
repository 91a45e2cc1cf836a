// Routes are the page's address: `/`, `/groups/<group>`, `/groups/<group>/items/<key>`, each
// segment encodeURIComponent'd (a key may hold `/`, `%`, spaces, anything), and a byte that is
// not UTF-8 (another tool's name) as its %XX (names.js). The address is the truth: a reload, a
// bookmark and back/forward all land on the same view.
//
// One exception to plain encodeURIComponent: the URL standard drops the segments "." and ".."
// (even written %2E), so the names "." and ".." are written "~." and "~..", and a name's
// leading "~" as %7E, which keeps the two spellings apart.

import { encodeName, decodeName } from "./names.js";

export function encodeSegment(name) {
  if (name === ".") return "~.";
  if (name === "..") return "~..";
  return encodeName(name).replace(/^~/, "%7E");
}

export function decodeSegment(segment) {
  if (segment === "~.") return ".";
  if (segment === "~..") return "..";
  return decodeName(segment);
}

export function parseRoute(pathname) {
  const parts = pathname.split("/").slice(1);
  if (parts.length === 1 && parts[0] === "") return { group: null, key: null };
  if (parts[0] !== "groups" || parts.length < 2) return { group: null, key: null, invalid: true };
  try {
    const group = decodeSegment(parts[1]);
    if (group === "") return { group: null, key: null, invalid: true }; // names are never empty
    if (parts.length === 2 || (parts.length === 3 && parts[2] === "")) return { group, key: null };
    if (parts.length === 4 && parts[2] === "items" && parts[3] !== "") {
      return { group, key: decodeSegment(parts[3]) };
    }
  } catch {
    // a stray `%` that is not an escape: fall through to invalid
  }
  return { group: null, key: null, invalid: true };
}

export function routePath({ group, key }) {
  if (group === null || group === undefined) return "/";
  const g = `/groups/${encodeSegment(group)}`;
  return key === null || key === undefined ? g : `${g}/items/${encodeSegment(key)}`;
}

export class Router {
  constructor(onRoute) {
    this.onRoute = onRoute;
    window.addEventListener("popstate", () => this.onRoute(this.current(), { pop: true }));
  }

  current() {
    return parseRoute(location.pathname);
  }

  /** Moves to a route: a new history entry, unless `replace` (a correction, not a step). */
  go(route, { replace = false } = {}) {
    let path;
    try {
      path = routePath(route);
    } catch {
      // a name no address can carry (a lone surrogate that stands for no byte): shown, not routed
      this.onRoute({ group: route.group ?? null, key: route.key ?? null }, { pop: false });
      return;
    }
    if (path !== location.pathname) {
      if (replace) history.replaceState(null, "", path);
      else history.pushState(null, "", path);
    }
    this.onRoute(this.current(), { pop: false });
  }
}
