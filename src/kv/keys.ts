import type { Json } from '../raft/types.js';

/**
 * Canonical JSON text of a value: object keys sorted, no whitespace. Two JSON values are the same
 * key exactly when their canonical texts are equal, so `1` and `"1"` stay distinct.
 */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const keys = Object.keys(value).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(value[k] as Json)).join(',') + '}';
}

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return canonicalJson(a) === canonicalJson(b);
}
