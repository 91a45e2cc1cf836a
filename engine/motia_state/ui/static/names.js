// Names as the engine gives them: Python strings in which bytes that are not UTF-8 (a group or
// key another tool wrote) are lone surrogates \udc80-\udcff, one per byte (surrogateescape).
// encodeURIComponent throws on those, and URLSearchParams would turn them into U+FFFD, which
// names another item; so names travel as their bytes: \udcXX as %XX, everything else as
// encodeURIComponent writes it. The server decodes its query the same way (surrogateescape), so
// it gets the very name back; decodeName does the same for the page's own address.

const BYTE_LOW = 0xdc80;
const BYTE_HIGH = 0xdcff;

/** `name` percent-encoded byte for byte; a lone surrogate that stands for no byte throws. */
export function encodeName(name) {
  const text = String(name);
  try {
    return encodeURIComponent(text);
  } catch {
    // a lone surrogate: written out code point by code point below
  }
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code >= BYTE_LOW && code <= BYTE_HIGH) {
      out += "%" + (code - 0xdc00).toString(16).toUpperCase().padStart(2, "0");
    } else if (code >= 0xd800 && code <= 0xdfff) {
      throw new URIError(`the name holds a lone surrogate (U+${code.toString(16).toUpperCase()}) that stands for no byte`);
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

/** The inverse: %XX escapes to bytes, the bytes as UTF-8, each byte that is not UTF-8 as
 * \udcXX (as Python's bytes.decode("utf-8", "surrogateescape")). A stray % throws. */
export function decodeName(text) {
  if (!text.includes("%")) return text;
  const bytes = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < text.length; ) {
    if (text[i] === "%") {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new URIError("a % that is not an escape");
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      const ch = String.fromCodePoint(text.codePointAt(i));
      for (const byte of encoder.encode(ch)) bytes.push(byte);
      i += ch.length;
    }
  }
  return decodeBytes(bytes);
}

/** Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF), the rest escaped. A byte
 * that cannot start a sequence, or a sequence cut short, escapes its first byte only: the bytes
 * after it are continuation bytes, escaped in turn, as Python escapes the whole bad run. */
export function decodeBytes(bytes) {
  const parts = [];
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i];
    let need;
    let code;
    let low = 0x80;
    let high = 0xbf;
    if (lead < 0x80) {
      parts.push(String.fromCharCode(lead));
      i++;
      continue;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      need = 1;
      code = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      need = 2;
      code = lead & 0x0f;
      if (lead === 0xe0) low = 0xa0; // overlong
      if (lead === 0xed) high = 0x9f; // a surrogate
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      need = 3;
      code = lead & 0x07;
      if (lead === 0xf0) low = 0x90; // overlong
      if (lead === 0xf4) high = 0x8f; // past U+10FFFF
    } else {
      need = 0;
    }
    let j = 1;
    for (; need && j <= need; j++) {
      const next = bytes[i + j];
      const min = j === 1 ? low : 0x80;
      const max = j === 1 ? high : 0xbf;
      if (next === undefined || next < min || next > max) break;
      code = (code << 6) | (next & 0x3f);
    }
    if (!need || j <= need) {
      parts.push(String.fromCharCode(0xdc00 + lead));
      i++;
      continue;
    }
    parts.push(String.fromCodePoint(code));
    i += need + 1;
  }
  return parts.join("");
}
