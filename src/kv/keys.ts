import type { Json } from '../raft/types.js';

/**
 * Canonical JSON text of a value: object keys sorted, no whitespace. Two JSON values are the same
 * key exactly when their canonical texts are equal, so `1` and `"1"` stay distinct.
 */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  // Built by concatenation, and object keys sorted only when they are not in order already: the
  // offline tools canonicalise every value of a state (hash, diff), a million of them.
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ',';
      s += (canonicalJson(value[i] as Json) as string | undefined) ?? '';
    }
    return s + ']';
  }
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
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
