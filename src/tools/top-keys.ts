/**
 * What `inspect` says of a snapshot file's payload, streamed a chunk at a time: the pairs, the
 * client table's size and the largest keys by encoded size, holding one chunk and the top list,
 * never the state (docs/FORMAT.md, "Limits").
 */
import type { Json } from '../raft/types.js';
import { SnapshotReader, type SnapshotHeader } from '../storage/index.js';
import { guard } from './load.js';
import { compareKeys } from './state.js';

export interface TopKey {
  key: Json;
  /** CBOR bytes of key + value (before compression). */
  bytes: number;
  keyBytes: number;
  valueBytes: number;
}

export interface PayloadSummary {
  header: SnapshotHeader;
  keys: number;
  sessions: Json | undefined;
  top: TopKey[];
}

/** Better first: more bytes, then the key order of compareKeys. */
function better(a: TopKey, b: TopKey): number {
  return b.bytes - a.bytes || compareKeys(a.key, b.key);
}

/** Keeps the `n` largest of the keys offered (ties by key order), in order. */
export class TopList {
  private readonly items: TopKey[] = [];
  constructor(private readonly n: number) {}

  offer(key: Json, keyBytes: number, valueBytes: number): void {
    if (this.n <= 0) return;
    const bytes = keyBytes + valueBytes;
    const items = this.items;
    if (items.length === this.n) {
      const worst = items[items.length - 1]!;
      if (bytes < worst.bytes) return;
      if (bytes === worst.bytes && compareKeys(key, worst.key) >= 0) return;
    }
    const t: TopKey = { key, bytes, keyBytes, valueBytes };
    let i = items.length;
    while (i > 0 && better(t, items[i - 1]!) < 0) i--;
    items.splice(i, 0, t);
    if (items.length > this.n) items.pop();
  }

  get list(): TopKey[] {
    return [...this.items];
  }
}

/** Read a snapshot file's payload once, a chunk at a time, verifying it as it goes. */
export function summarizeSnapshot(file: string, top: number): PayloadSummary {
  const r = guard(() => SnapshotReader.open(file), file);
  const list = new TopList(top);
  let keys = 0;
  try {
    const it = r.chunks();
    for (;;) {
      const next = guard(() => it.next(), file);
      if (next.done) break;
      const c = next.value;
      for (let i = 0; i < c.keys.length; i++) list.offer(c.keys[i]!, c.keyBytes[i]!, c.valueBytes[i]!);
      keys += c.keys.length;
    }
  } finally {
    r.close();
  }
  return { header: r.header, keys, sessions: r.sessions, top: list.list };
}
