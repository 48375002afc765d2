/**
 * A tool's snapshot of a state held as a KvStore (`snapshot`, `compact`): encoded as the node
 * encodes its own (a frozen view's columns into SnapshotEncoder, no array of pairs), and a written
 * file checked against the store it was made from by streaming it back (checksums, every limit,
 * and each pair equal to the store's pair at the same place). Memory: the store, the file's bytes,
 * one chunk.
 */
import { startProgress } from '../cli/progress.js';
import type { KvStore } from '../kv/store.js';
import type { Json, NodeId } from '../raft/types.js';
import { SnapshotEncoder, SnapshotReader, type FileSystem } from '../storage/index.js';
import { sessionsText } from './diff.js';
import { ToolError } from './errors.js';
import { guard, PROGRESS_MIN_KEYS } from './load.js';
import { sameJson, showJson } from './state.js';

/** Pairs per column batch: the format's chunk, so that the encoder takes them without a copy. */
const BATCH = 8192;

/** The store's pairs (in its order: number and string keys, then the others) as a snapshot file. */
export function encodeStore(
  store: KvStore,
  meta: { index: number; term: number; config: NodeId[] },
  sessions: Json | null,
  opts: { createdAt: number; nodeId: NodeId | null },
): Buffer {
  const view = store.freeze();
  const bar = startProgress('encoding', view.size >= PROGRESS_MIN_KEYS ? view.size : 0);
  try {
    const enc = new SnapshotEncoder(meta, opts);
    for (const c of view.columns(BATCH)) {
      enc.addColumns(c.keys, c.values);
      bar.update(enc.count);
    }
    return enc.finish(sessions === null ? undefined : sessions);
  } finally {
    view.release();
    bar.stop();
  }
}

/** Put in the store in place of a value once its pair has been read back: a second one is a duplicate. */
const SEEN: Json = Object.freeze({ seen: true }) as Json;

/**
 * Read the snapshot file `file` back (streamed: checksums, limits, decoding) and check that it holds
 * exactly the store's pairs (in any order: a format may group a chunk's keys) and the session table
 * `sessions`, at `index`. Throws CORRUPT naming `shown` when it does not. Returns the file's header.
 * Consumes the store: each value read back is replaced by a marker (a write in place, no rehash),
 * so that a key read twice is caught without a set of the keys.
 */
export function verifyAgainstStore(file: string, shown: string, store: KvStore, index: number, sessions: Json | null, fsys?: FileSystem): SnapshotReader['header'] {
  const r = guard(() => SnapshotReader.open(file, fsys ? { fs: fsys } : {}), shown);
  const bad = (what: string): never => {
    throw new ToolError('CORRUPT', shown, `the written snapshot does not read back as the state it was made from (${what})`);
  };
  const size = store.size;
  const bar = startProgress('verifying', size >= PROGRESS_MIN_KEYS ? size : 0);
  try {
    if (r.header.index !== index || r.header.keyCount !== size) bad(`index ${r.header.index}, ${r.header.keyCount} keys`);
    const it = r.chunks();
    for (;;) {
      const next = guard(() => it.next(), shown);
      if (next.done) break;
      const { keys, values } = next.value;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const want = store.get(k);
        if (want === undefined) bad(`key ${showJson(k)} is not in the state`);
        if (want === SEEN) bad(`key ${showJson(k)} read twice`);
        if (!sameJson(values[i]!, want!)) bad(`the value of key ${showJson(k)}`);
        store.set(k, SEEN);
      }
      bar.update(r.keysRead);
    }
    if (r.keysRead !== size) bad(`${r.keysRead} pairs, the state has ${size}`);
    // As the node loads the tables (a form it cannot read is no table).
    if (!sameJson(r.sessions ?? null, sessions) && sessionsText(r.sessions ?? null) !== sessionsText(sessions)) bad('the client session table');
    return r.header;
  } finally {
    r.close();
    bar.stop();
  }
}
