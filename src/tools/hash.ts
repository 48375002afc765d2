/**
 * `hash`: a hash of a state that does not depend on how it is stored (docs/FORMAT.md, "State
 * hash"), as etcd's hashkv: every pair's canonical JSON is hashed on its own and the digests are
 * added up, so neither the order of the keys, nor the chunking, compression or file format, nor a
 * snapshot against the directory that recovers the same state changes it. Several states (or a
 * data root holding n1, n2, ...) give one row each and a verdict: do all that reached the same
 * index agree?
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../kv/keys.js';
import { KvStore } from '../kv/store.js';
import type { Json, NodeId } from '../raft/types.js';
import { META_FILE, type FileSystem } from '../storage/index.js';
import { ToolError, toToolError } from './errors.js';
import { isDataDir } from './files.js';
import { pathKind } from './load.js';
import { openStateStream } from './state-stream.js';

/** Names the definition; a different definition would be a new version. */
export const STATE_HASH_VERSION = 'raftsnap-kv-hash-v1';

function sha256(data: string | Uint8Array): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

// UTF-8 of one pair's text, reused from pair to pair (`encode` fills it; read it before the next call).
export let bytes = new Uint8Array(256);
const utf8 = new TextEncoder();

/** UTF-8 of `t` into `bytes` (grown as needed); returns its length. */
export function encode(t: string): number {
  const n = t.length;
  if (bytes.length < n * 3) bytes = new Uint8Array(n * 3 + 64);
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x80) return utf8.encodeInto(t, bytes).written;
    bytes[i] = c;
  }
  return n;
}

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;
const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const fmix = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
};
const word = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

/** MurmurHash3_x86_128 (seed 0) of `b[0, len)`, into out[0..3] (h1..h4). */
export function murmur3x86_128(b: Uint8Array, len: number, out: Uint32Array): void {
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  const blocks = len - (len & 15);
  for (let i = 0; i < blocks; i += 16) {
    let k1 = word(b, i);
    let k2 = word(b, i + 4);
    let k3 = word(b, i + 8);
    let k4 = word(b, i + 12);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  const t = blocks;
  const rest = len & 15;
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  if (rest > 12) {
    for (let j = rest - 1; j >= 12; j--) k4 ^= b[t + j]! << ((j - 12) * 8);
    h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
  }
  if (rest > 8) {
    for (let j = Math.min(rest, 12) - 1; j >= 8; j--) k3 ^= b[t + j]! << ((j - 8) * 8);
    h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
  }
  if (rest > 4) {
    for (let j = Math.min(rest, 8) - 1; j >= 4; j--) k2 ^= b[t + j]! << ((j - 4) * 8);
    h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
  }
  if (rest > 0) {
    for (let j = Math.min(rest, 4) - 1; j >= 0; j--) k1 ^= b[t + j]! << (j * 8);
    h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
  }
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) >>> 0;
  out[0] = h1;
  out[1] = (h2 + h1) >>> 0;
  out[2] = (h3 + h1) >>> 0;
  out[3] = (h4 + h1) >>> 0;
}

/**
 * The state hash (docs/FORMAT.md, "State hash"): each pair's text `canonicalJson(key) + "\n" +
 * canonicalJson(value)` (UTF-8) is hashed with MurmurHash3_x86_128 (seed 0), read as the 128-bit
 * integer h1 + h2*2^32 + h3*2^64 + h4*2^96; these are added modulo 2^128 (so the order of the
 * pairs does not matter); the state hash is SHA-256 of `raftsnap-kv-hash-v1\n<count>\n<sum as 32
 * hex digits>`, written as 64 hex digits. Canonical JSON: object keys sorted, no whitespace
 * (src/kv/keys.ts), so `1` and `"1"` are different keys and object key order does not matter.
 */
export class StateHasher {
  /** The sum, least significant 32-bit word first. */
  private readonly sum = new Uint32Array(4);
  private readonly h = new Uint32Array(4);
  count = 0;

  add(key: Json, value: Json): void {
    const n = encode(canonicalJson(key) + '\n' + canonicalJson(value));
    murmur3x86_128(bytes, n, this.h);
    let carry = 0;
    for (let i = 0; i < 4; i++) {
      const s = this.sum[i]! + this.h[i]! + carry;
      this.sum[i] = s >>> 0;
      carry = s > 0xffffffff ? 1 : 0;
    }
    this.count++;
  }

  /** The sum as 32 hex digits, most significant first. */
  sumHex(): string {
    let out = '';
    for (let i = 3; i >= 0; i--) out += this.sum[i]!.toString(16).padStart(8, '0');
    return out;
  }

  digest(): string {
    return sha256(`${STATE_HASH_VERSION}\n${this.count}\n${this.sumHex()}`).toString('hex');
  }
}

/**
 * SHA-256 of the canonical JSON of a client session table as the node loads it (a table of another
 * shape loads as an empty one); null when it is empty or absent.
 */
export function sessionsHash(s: Json | null): string | null {
  if (s === null) return null;
  const table = KvStore.fromEntries([], s).sessions;
  return table.size === 0 ? null : sha256(canonicalJson(table.toJson())).toString('hex');
}

export interface HashRow {
  source: string;
  kind: 'snapshot' | 'dir';
  nodeId: NodeId | null;
  index: number;
  term: number;
  keys: number;
  hash: string;
  /** Hash of the client session table (forwarded requests applied), null when there is none. */
  sessions: string | null;
}

/** Hash one snapshot file or data directory, streaming (nothing of the state is kept). */
export function hashState(p: string, warnings: string[] = [], opts: { fs?: FileSystem } = {}): HashRow {
  const st = openStateStream(p, { ...opts, order: 'any' });
  const h = new StateHasher();
  try {
    for (const { keys, values } of st.columns()) for (let i = 0; i < keys.length; i++) h.add(keys[i]!, values[i]!);
  } finally {
    st.close();
  }
  for (const w of st.info.warnings) warnings.push(w);
  return {
    source: p,
    kind: st.info.kind,
    nodeId: st.info.nodeId,
    index: st.info.index,
    term: st.info.term,
    keys: h.count,
    hash: h.digest(),
    sessions: sessionsHash(st.sessions()),
  };
}

/** `n2` before `n10`. */
function natural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * The paths to hash: each argument as it is, except a directory that is not a data directory but
 * holds data directories (a data root, as `raftsnap cluster` leaves: n1, n2, ...), which stands
 * for them.
 */
export function expandPaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    // A directory with a meta.json is a data directory, a damaged or unreadable one included: its
    // reader names the real problem (not "no meta.json").
    if (pathKind(p) === 'dir' && !isDataDir(p) && !fs.existsSync(path.join(p, META_FILE))) {
      let names: string[];
      try {
        names = fs.readdirSync(p);
      } catch (e) {
        throw toToolError(e, p);
      }
      const dirs = names.filter((n) => {
        const q = path.join(p, n);
        try {
          return fs.statSync(q).isDirectory() && isDataDir(q);
        } catch {
          return false;
        }
      });
      if (dirs.length === 0) throw new ToolError('NOT_DATA_DIR', p, 'not a raftsnap data directory (no meta.json), nor a data root holding data directories');
      for (const n of dirs.sort(natural)) out.push(path.join(p, n));
    } else out.push(p);
  }
  return out;
}

export interface HashGroup {
  index: number;
  sources: string[];
  /** Distinct (hash, sessions) pairs among them: 1 when they agree. */
  distinct: number;
  agree: boolean;
}

export interface HashResult {
  version: string;
  rows: HashRow[];
  /** States grouped by index: only states at the same index can be compared. */
  groups: HashGroup[];
  /** Every group agrees (a group of one agrees with itself). */
  agree: boolean;
  warnings: string[];
}

export function hashPaths(paths: string[]): HashResult {
  const warnings: string[] = [];
  const rows = expandPaths(paths).map((p) => hashState(p, warnings));
  const byIndex = new Map<number, HashRow[]>();
  for (const r of rows) {
    const g = byIndex.get(r.index) ?? [];
    g.push(r);
    byIndex.set(r.index, g);
  }
  const groups: HashGroup[] = [...byIndex.entries()]
    .sort((a, b) => b[0] - a[0])
    .map(([index, rs]) => {
      const distinct = new Set(rs.map((r) => `${r.hash}/${r.sessions ?? ''}`)).size;
      return { index, sources: rs.map((r) => r.source), distinct, agree: distinct === 1 };
    });
  return { version: STATE_HASH_VERSION, rows, groups, agree: groups.every((g) => g.agree), warnings };
}
