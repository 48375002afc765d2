import type { Json } from '../raft/types.js';

/**
 * Canonical JSON text of a value: object keys sorted, no whitespace. Two JSON values are the same
 * key exactly when their canonical texts are equal, so `1` and `"1"` stay distinct.
 */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  // Most values hold their object keys in order already: then JSON.stringify writes the canonical
  // text itself, much faster than building it (the offline tools canonicalise every value of a
  // state, a million of them, for hash and diff).
  if (inOrder(value)) return JSON.stringify(value);
  return built(value);
}

/** Every object in `v` has its keys in sorted order (as JSON.stringify will write them), and nothing is undefined. */
function inOrder(v: Json): boolean {
  if (v === null || typeof v !== 'object') return v !== undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!inOrder(v[i] as Json)) return false;
    return true;
  }
  let prev: string | null = null;
  for (const k in v) {
    if (prev !== null && prev > k) return false;
    prev = k;
    if (!inOrder(v[k] as Json)) return false;
  }
  return true;
}

/** The canonical text built piece by piece, object keys sorted. */
function built(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ',';
      s += (canonicalJson(value[i] as Json) as string | undefined) ?? '';
    }
    return s + ']';
  }
  const keys = Object.keys(value).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (i > 0) s += ',';
    s += JSON.stringify(k) + ':' + canonicalJson(value[k] as Json);
  }
  return s + '}';
}

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return canonicalJson(a) === canonicalJson(b);
}
