/**
 * A tool's snapshot of a state held as columns (`snapshot`, `compact`; src/tools/held-state.ts), verified before anything
 * depends on it:
 *
 *  1. encoded as the node encodes its own (the held state's columns into SnapshotEncoder, no array
 *     of pairs), the encoder noting where each pair went (`fileOrder`: a format may group a
 *     chunk's keys, never move a pair out of its chunk);
 *  2. the bytes read back through the node's own reader (checksums, every rule and limit, every
 *     value decoded), each pair compared with the state's pair the encoder put there, a chunk at a
 *     time in the state's order (no lookup by key), every place used once, the count, the
 *     index and the session table too;
 *  3. once written, the file compared byte for byte with those bytes (`checkWrittenFile`).
 *
 * So a file that passes holds exactly the state as the node will load it. Memory: the
 * state, the file's bytes, one chunk of the read-back, 4 bytes per pair for the order.
 */
import { startProgress } from '../cli/progress.js';
import type { Json, NodeId } from '../raft/types.js';
import { CHUNK_PAIRS, SnapshotEncoder, SnapshotReader, nodeFs, readAt, type FileSystem, type SnapshotHeader } from '../storage/index.js';
import { sessionsText } from './diff.js';
import { ToolError } from './errors.js';
import type { HeldState } from './held-state.js';
import { guard, PROGRESS_MIN_KEYS } from './load.js';
import { sameJson, showJson } from './state.js';

export interface EncodedState {
  bytes: Buffer;
  header: SnapshotHeader;
}

/**
 * The held state's pairs (in its order) as a snapshot file at `meta`, verified as described above;
 * throws CORRUPT naming `shown` (the file it is meant for) when the bytes do not read back as the
 * state. The state is not changed.
 */
export function encodeState(
  state: HeldState,
  meta: { index: number; term: number; config: NodeId[] },
  sessions: Json | null,
  opts: { createdAt: number; nodeId: NodeId | null; shown: string },
): EncodedState {
  const big = state.size >= PROGRESS_MIN_KEYS;
  let bar = startProgress('encoding', big ? state.size : 0);
  let bytes: Buffer;
  let order: Int32Array;
  try {
    const enc = new SnapshotEncoder(meta, { createdAt: opts.createdAt, nodeId: opts.nodeId, recordOrder: true });
    for (const c of state.columns()) {
      enc.addColumns(c.keys, c.values);
      bar.update(enc.count);
    }
    bytes = enc.finish(sessions === null ? undefined : sessions);
    order = enc.fileOrder();
  } finally {
    bar.stop();
  }
  bar = startProgress('verifying', big ? state.size : 0);
  try {
    const header = verifyEncoded(bytes, order, state.columns(), { size: state.size, index: meta.index, sessions, shown: opts.shown, progress: (n) => bar.update(n) });
    return { bytes, header };
  } finally {
    bar.stop();
  }
}

/**
 * Read `bytes` back as the node would and check it against the input it was made from: `input`
 * yields the `size` pairs in the order they were given to the encoder, in chunks of CHUNK_PAIRS
 * (the last one shorter), and `order[p]` is the input place of the file's p-th pair. Exported for tests.
 */
export function verifyEncoded(
  bytes: Buffer,
  order: Int32Array,
  input: Iterator<{ keys: Json[]; values: Json[] }>,
  want: { size: number; index: number; sessions: Json | null; shown: string; progress?: (n: number) => void },
): SnapshotHeader {
  const { size, index, sessions, shown } = want;
  const bad = (what: string): never => {
    throw new ToolError('CORRUPT', shown, `the snapshot made does not read back as the state it was made from (${what}); nothing was written`);
  };
  const r = guard(() => SnapshotReader.fromBytes(bytes, shown), shown);
  if (r.header.index !== index || r.header.keyCount !== size) bad(`index ${r.header.index}, ${r.header.keyCount} keys`);
  if (order.length !== size) bad(`${order.length} pairs placed, the state has ${size}`);
  const used = new Uint8Array(Math.min(size, CHUNK_PAIRS));
  // The input chunk that the file's pairs at [winStart, winEnd) come from.
  let winKeys: Json[] = [];
  let winValues: Json[] = [];
  let winStart = 0;
  let winEnd = 0;
  let p = 0;
  const it = r.chunks();
  for (;;) {
    const next = guard(() => it.next(), shown);
    if (next.done) break;
    const { keys, values } = next.value;
    for (let i = 0; i < keys.length; i++, p++) {
      if (p >= winEnd) {
        const c = input.next();
        if (c.done || p >= size) bad(`more than ${size} pairs`);
        winKeys = c.value.keys;
        winValues = c.value.values;
        winStart = winEnd;
        winEnd += winKeys.length;
        used.fill(0);
      }
      const g = order[p]! - winStart;
      if (!(g >= 0 && g < winKeys.length) || used[g] !== 0) bad(`pair ${p} is placed at ${order[p]}`);
      used[g] = 1;
      const k = keys[i]!;
      const want = winKeys[g]!;
      if (k !== want && (typeof k !== 'object' || !sameJson(k, want))) bad(`key ${showJson(want)} reads back as ${showJson(k)}`);
      if (!sameJson(values[i]!, winValues[g]!)) bad(`the value of key ${showJson(want)}`);
    }
    want.progress?.(p);
  }
  if (p !== size || winEnd !== size) bad(`${p} pairs, the state has ${size}`);
  // As the node loads the tables (a form it cannot read is no table).
  if (!sameJson(r.sessions ?? null, sessions) && sessionsText(r.sessions ?? null) !== sessionsText(sessions)) bad('the client session table');
  return r.header;
}

/** Pieces in which a written file is read back. */
const PIECE = 1 << 20;

/**
 * The file `file` (as `shown`) holds exactly `bytes`: what was verified is what is on disk (as far
 * as a read after the fsync can tell). Throws CORRUPT otherwise.
 */
export function checkWrittenFile(file: string, shown: string, bytes: Uint8Array, fsys: FileSystem = nodeFs): void {
  const bad = (what: string): never => {
    throw new ToolError('CORRUPT', shown, `the snapshot file written does not read back as the bytes written (${what})`);
  };
  const st = guard(() => fsys.stat(file), shown);
  if (st.size !== bytes.length) bad(`${st.size} bytes, ${bytes.length} written`);
  const fd = guard(() => fsys.open(file, 'r'), shown);
  try {
    const piece = Buffer.allocUnsafe(Math.min(PIECE, Math.max(1, bytes.length)));
    for (let pos = 0; pos < bytes.length; pos += piece.length) {
      const n = Math.min(piece.length, bytes.length - pos);
      const view = piece.subarray(0, n);
      guard(() => readAt(fsys, fd, view, pos, file), shown);
      if (!view.equals(bytes.subarray(pos, pos + n))) bad(`they differ in the bytes from offset ${pos}`);
    }
  } finally {
    fsys.close(fd);
  }
}
