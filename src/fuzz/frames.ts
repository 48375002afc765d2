/**
 * The fuzzer's target for snapshot format 3 (docs/FORMAT.md, "Version 3: frames"): a version 3
 * file taken apart into its frames, one of them (or the frame table, or the frames' bounds)
 * changed, each frame compressed again and the file sealed with correct checksums, so that the
 * checks of the frame table and of each frame are reached. Every reader of a format 3 file runs on
 * it: decodeSnapshot (in memory), SnapshotReader over a file (the CRC checked while streaming, a
 * frame at a time) and FramedSnapshot (fromBytes, then every chunk on its own, last first). Each
 * must end in a result or a StorageError, and they must agree: all read the file, or all refuse it.
 */
import type { Json } from '../raft/types.js';
import { KvStore } from '../kv/store.js';
import { keyShard } from '../kv/shards.js';
import { decodeCborSequence, zstdDecompressExact } from '../storage/codec.js';
import { MemFs } from '../storage/mem-fs.js';
import { FramedSnapshot } from '../storage/snapshot-framed.js';
import { SnapshotReader, decodeSnapshot, decodeSnapshotHeader, encodeSnapshot } from '../storage/snapshot.js';
import { StorageError } from '../storage/errors.js';
import { EXTREMES32, mutate, mutateItemList, type Rng, type Target } from './cases.js';
import { cbor, groupItems, snapshotFromFrames, snapshotFromPayload, zstdFrame, type HandChunk } from './seal.js';

/** A format 3 file taken apart: each frame's raw CBOR bytes, and what the table says of each chunk frame. */
interface Parts {
  raw: Buffer[];
  chunks: HandChunk[];
  keyCount: number;
  index: number;
  term: number;
}

function partsOf(file: Buffer): Parts | null {
  try {
    const h = decodeSnapshotHeader(file);
    const f = h.frames;
    if (f === null) return null;
    const payload = file.subarray(h.payloadOffset);
    const raw = [f.state, ...f.chunks, f.end].map((sp) => zstdDecompressExact(payload.subarray(sp.offset, sp.offset + sp.size), sp.rawSize));
    return { raw, chunks: f.chunks.map((c) => ({ pairs: c.pairs, firstShard: c.firstShard, lastShard: c.lastShard })), keyCount: h.keyCount, index: h.index, term: h.term };
  } catch {
    return null;
  }
}

/** The items of raw CBOR bytes (trusted seed bytes), or null. */
function itemsOf(raw: Uint8Array): unknown[] | null {
  const items: unknown[] = [];
  try {
    decodeCborSequence(raw, (v) => void items.push(v));
  } catch {
    return null;
  }
  return items;
}

/**
 * Seeds: the state of every group form and key kind in one chunk frame, and a state machine's
 * state of 150 keys in five chunk frames of 30 (the shards of each as the writer records them),
 * with a session table.
 */
export function framesSeeds(): Buffer[] {
  const kv: Array<[Json, Json]> = [];
  for (let i = 0; i < 30; i++) {
    const n = (i * 37) % 31;
    kv.push([n * 4099, i % 5], [`user:${n}`, `v${i}`], [`/org/${i % 4}/f-${i}.json`, [i, null]], [(0x9e3779b9 * (i + 1)).toString(16).slice(-8).padStart(8, '0') + 'beef', i * 1e9]);
  }
  kv.push([null, 2], [[1, 'a'], { b: [] }], [1.5, 'half'], [-3, true], [2 ** 53 - 1, -(2 ** 52)]);
  const one = encodeSnapshot({ index: 9, term: 2, config: ['n1', 'n2'] }, { kv, sessions: { forwards: [] } }, { createdAt: 1, nodeId: 'n1', formatVersion: 3 });
  const store = KvStore.fromEntries(kv.slice(0, 150));
  const entries = [...store.entries()];
  const frames: unknown[][] = [[['raftsnap-state', 3]]];
  const chunks: HandChunk[] = [];
  for (let i = 0; i < entries.length; i += 30) {
    const part = entries.slice(i, i + 30);
    const shards = part.map(([k]) => keyShard(k));
    frames.push(groupItems(part));
    chunks.push({ pairs: part.length, firstShard: Math.min(...shards), lastShard: Math.max(...shards) });
  }
  frames.push([{ keyCount: entries.length, sessions: { forwards: [{ origin: 'n2/c1', last: 5, low: 0, ids: [1, 1] }] } }]);
  return [one, snapshotFromFrames(frames, chunks, { index: 5, term: 1 })];
}

const SHARD_EXTREMES = [0, 1, 63, 64, 65, 2 ** 31, 2 ** 53 - 1];
const PAIR_EXTREMES = [0, 1, 8191, 8192, 8193, 2 ** 32];

/** One change to a file's parts: a frame's bytes or items, items moved between frames, frames merged or split, the table's entries. */
interface Change {
  frames: Buffer[];
  table: Array<[number, number, number]>;
  keyCount: number;
  /** Bytes the bound after one frame moves by (the sizes still adding up). */
  shift: number;
  /** Chunk frame whose compressed frame and the next one are declared as one frame (their entries made one). */
  join: number | null;
  /** Frame followed by a skippable zstd frame that its declared size covers. */
  skippable: number | null;
}

function change(p: Parts, rng: Rng): Change {
  let frames: Buffer[] = p.raw.map((b) => Buffer.from(b));
  let table: Array<[number, number, number]> = p.chunks.map((c) => [c.pairs, c.firstShard, c.lastShard]);
  let keyCount = p.keyCount;
  let shift = 0;
  let join: number | null = null;
  let skippable: number | null = null;
  const j = rng.int(frames.length);
  switch (rng.int(8)) {
    case 0:
    case 1:
      // A frame's raw bytes.
      frames[j] = mutate(frames[j]!, rng);
      break;
    case 2: {
      // An item of a frame changed as a value (a hostile key or value, a group's count or column, the end item's count or sessions).
      const items = itemsOf(frames[j]!);
      if (items && mutateItemList(items, rng, 0)) {
        try {
          frames[j] = Buffer.concat(items.map((x) => cbor(x)));
        } catch {
          // too deep to encode: the byte mutations cover it
        }
      }
      break;
    }
    case 3: {
      // An item moved, or copied, into the next or the previous frame.
      const k = rng.int(2) === 0 ? Math.min(j + 1, frames.length - 1) : Math.max(j - 1, 0);
      const items = itemsOf(frames[j]!);
      const other = itemsOf(frames[k]!);
      if (items && other && items.length > 0) {
        const at = rng.int(items.length);
        const it = items[at];
        if (rng.int(2) === 0) items.splice(at, 1);
        other.splice(rng.int(other.length + 1), 0, it);
        try {
          if (k !== j) frames[j] = Buffer.concat(items.map((x) => cbor(x)));
          frames[k] = Buffer.concat(other.map((x) => cbor(x)));
        } catch {
          // as above
        }
      }
      break;
    }
    case 4: {
      // Two neighbouring chunk frames made one (their items in one frame, one table entry), or one split in two.
      const c = rng.int(table.length);
      const r = rng.int(4);
      if (r === 0) {
        skippable = j;
      } else if (table.length >= 2 && c + 1 < table.length && r === 1) {
        // As one table entry: their two compressed frames, or their items compressed as one frame.
        const [a, b] = [table[c]!, table[c + 1]!];
        if (rng.int(2) === 0) join = c;
        else frames = [...frames.slice(0, c + 1), Buffer.concat([frames[c + 1]!, frames[c + 2]!]), ...frames.slice(c + 3)];
        table = [...table.slice(0, c), [a[0] + b[0], Math.min(a[1], b[1]), Math.max(a[2], b[2])], ...table.slice(c + 2)];
      } else if (table.length > 0) {
        const items = itemsOf(frames[c + 1]!);
        if (items && items.length >= 2) {
          const cut = 1 + rng.int(items.length - 1);
          const half = Math.floor(table[c]![0] / 2);
          try {
            const enc = items.map((x) => cbor(x));
            frames = [...frames.slice(0, c + 1), Buffer.concat(enc.slice(0, cut)), Buffer.concat(enc.slice(cut)), ...frames.slice(c + 2)];
            table = [...table.slice(0, c), [half, table[c]![1], table[c]![2]], [table[c]![0] - half, table[c]![1], table[c]![2]], ...table.slice(c + 1)];
          } catch {
            // as above
          }
        }
      }
      break;
    }
    case 5: {
      // A chunk entry's pairs or shards: an extreme, one off, or another chunk's.
      if (table.length === 0) break;
      const e = table[rng.int(table.length)]!;
      const f = rng.int(3);
      const r = rng.int(3);
      e[f] = r === 0 ? rng.pick(f === 0 ? PAIR_EXTREMES : SHARD_EXTREMES) : r === 1 ? Math.max(0, e[f]! + rng.pick([-1, 1])) : table[rng.int(table.length)]![f]!;
      if (f === 0 && rng.int(2) === 0) keyCount = table.reduce((a, t) => a + t[0], 0);
      break;
    }
    case 6:
      // The bounds between two frames moved by a few bytes (sizes still adding up), or the header's count.
      if (rng.int(2) === 0) shift = rng.pick([-3, -1, 1, 2, 5]);
      else keyCount = rng.pick([0, keyCount - 1, keyCount + 1, rng.pick(EXTREMES32)]);
      break;
    default:
      // A whole frame removed (and its entry), or a frame duplicated.
      if (j > 0 && j < frames.length - 1 && rng.int(2) === 0) {
        frames.splice(j, 1);
        table.splice(j - 1, 1);
      } else {
        frames.splice(j, 0, frames[j]!);
        const t = table[j - 1];
        if (t && rng.int(2) === 0) table.splice(j - 1, 0, [...t]);
      }
  }
  return { frames, table, keyCount, shift, join, skippable };
}

/** Seal the changed parts: each frame compressed on its own, the table with the true sizes (but `shift`). */
function seal(p: Parts, c: Change, rng: Rng): Buffer {
  const made = c.frames.map((raw) => zstdFrame(raw));
  if (c.skippable !== null) {
    // A skippable frame (RFC 8878, 3.1.2) of 4 bytes after frame `skippable`, inside its declared size.
    const m = made[c.skippable]!;
    const skip = Buffer.alloc(12);
    skip.writeUInt32LE(0x184d2a50 + rng.int(16), 0);
    skip.writeUInt32LE(4, 4);
    m.payload = Buffer.concat([m.payload, skip]);
  }
  const spans = made.map((m) => [m.payload.length, m.rawSize]);
  if (c.join !== null && c.join + 2 < spans.length) {
    const [a, b] = [spans[c.join + 1]!, spans[c.join + 2]!];
    spans.splice(c.join + 1, 2, [a[0]! + b[0]!, a[1]! + b[1]!]);
  }
  if (c.shift !== 0 && spans.length >= 2) {
    const j = rng.int(spans.length - 1);
    spans[j]![0]! += c.shift;
    spans[j + 1]![0]! -= c.shift;
  }
  const chunkSpans = spans.slice(1, -1);
  const table = {
    stateFrame: spans[0],
    // As many entries as the table has; a frame without one, or one without a frame, is part of the change.
    chunkFrames: c.table.map((t, j) => [...(chunkSpans[j] ?? [1, 1]), ...t]),
    endFrame: spans[spans.length - 1],
  };
  const payload = Buffer.concat(made.map((m) => m.payload));
  const rawSize = made.reduce((a, m) => a + m.rawSize, 0);
  return snapshotFromPayload(payload, rawSize, { formatVersion: 3, index: p.index, term: p.term, keyCount: Math.max(0, c.keyCount), extra: table });
}

/** How one reader ended: the pairs it read (canonical enough to compare: JSON of each chunk), or null when it refused. */
function ended(f: () => string): string | null {
  try {
    return f();
  } catch (e) {
    if (e instanceof StorageError) {
      if (e.message.includes('\n')) throw new Error(`a StorageError of more than one line: ${JSON.stringify(e.message)}`);
      return null;
    }
    throw e;
  }
}

const pairsText = (keys: Json[], values: Json[]): string => JSON.stringify([keys, values]);

export const snapshotFrames: Target = {
  name: 'snapshot-frames',
  seeds: framesSeeds,
  make: (seed, rng) => {
    const p = partsOf(seed);
    if (p === null) return mutate(seed, rng);
    return seal(p, change(p, rng), rng);
  },
  run: (input) => {
    const whole = ended(() => {
      const d = decodeSnapshot(input, 'fuzz.snap');
      // What the node does with a decoded state.
      KvStore.fromEntries(d.content.kv, d.content.sessions);
      return JSON.stringify([d.content.kv.length, d.content.sessions ?? null]);
    });
    const mfs = new MemFs();
    mfs.mkdir('/s', { recursive: true });
    const fd = mfs.open('/s/fuzz.snap', 'w');
    mfs.write(fd, input, 0, input.length);
    mfs.close(fd);
    const streamed = ended(() => {
      const r = SnapshotReader.open('/s/fuzz.snap', { fs: mfs, verify: 'streaming' });
      let n = 0;
      for (const c of r.chunks()) n += c.keys.length;
      return JSON.stringify([n, r.sessions ?? null]);
    });
    const framed = ended(() => {
      const f = FramedSnapshot.fromBytes(input, 'fuzz.snap');
      if (f === null) return 'not version 3';
      let n = 0;
      for (let j = f.chunks.length - 1; j >= 0; j--) {
        const c = f.chunk(j);
        pairsText(c.keys, c.values);
        n += c.keys.length;
      }
      return JSON.stringify([n, f.sessions ?? null]);
    });
    // The readers agree: the same count and sessions, or all refuse (the version 1 and 2 files a
    // mutation can make are not FramedSnapshot's).
    if (whole !== streamed) throw new Error(`decodeSnapshot and SnapshotReader.open disagree: ${whole ?? 'refused'} vs ${streamed ?? 'refused'}`);
    if (framed !== 'not version 3' && framed !== whole) throw new Error(`decodeSnapshot and FramedSnapshot disagree: ${whole ?? 'refused'} vs ${framed ?? 'refused'}`);
    return whole === null ? 'refused' : 'ok';
  },
};
