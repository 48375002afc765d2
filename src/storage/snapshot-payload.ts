/**
 * Decoding a snapshot's payload (docs/FORMAT.md, "Payload"), every rule of the format and every
 * limit checked: the whole payload in order (`PayloadDecoder.all`, for SnapshotReader), or, in
 * format 3, one chunk frame on its own (`PayloadDecoder.frame`, for a node that answers for a key
 * before its whole state is loaded). Both take each item through the same scan and the same checks.
 */
import { createRequire } from 'node:module';
import type { Json } from '../raft/types.js';
import { keyShard } from '../kv/shards.js';
import { LIMIT_NAMES, maxItemCborBytes, surelySmallPairBytes, type ReadLimits } from '../limits.js';
import {
  CborScanError,
  NotJsonError,
  ZstdStreamError,
  cborScan,
  decodeCborRaw,
  toJson,
  toJsonArray,
  zstdCborItems,
  ZSTD_WINDOW_LOG_MAX,
  type CborScanLimits,
  type ItemScanner,
  type RawItem,
  type ZstdInput,
} from './codec.js';
import { decodeGroupV2, scanGroupV2 } from './chunk-v2.js';
import { StorageError } from './errors.js';
import { CHUNK_PAIRS, SNAPSHOT_STATE_TAG, type ChunkFrame, type FrameSpan, type SnapshotHeader } from './snapshot.js';

const require = createRequire(import.meta.url);
const zstdBinding = require('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

/** One chunk of a payload: `keys[i] -> values[i]`, in payload order. */
export interface SnapshotChunk {
  keys: Json[];
  values: Json[];
  /** CBOR bytes of each key as stored (a key run's keys: as an integer would be written). */
  keyBytes: number[];
  /** CBOR bytes of each value as stored. */
  valueBytes: number[];
  /** Where the chunk starts in the decompressed payload. */
  rawOffset: number;
}

/** What a frame of a format 3 payload holds; 'any': the one frame of versions 1 and 2. */
type FrameKind = 'state' | 'chunk' | 'end' | 'any';

/** How to raise a limit: its flag and environment variable. */
export function raise(k: keyof ReadLimits): string {
  return `--${LIMIT_NAMES[k].flag} or ${LIMIT_NAMES[k].env} raises it`;
}

export class PayloadDecoder {
  /** The end item's client table, once `all()` has ended (undefined when there is none). */
  sessions: Json | undefined = undefined;
  /** Pairs yielded so far by `all()`. */
  keysRead = 0;
  private readonly small: number;
  private readonly stateScan: CborScanLimits = { maxDepth: 1, maxStringBytes: 64 };
  private readonly chunkScan: CborScanLimits;
  private readonly endScan: CborScanLimits;
  private readonly elemScan: CborScanLimits;
  // Sizes found by the last scan (the decode of the item scanned last uses them).
  private readonly sizes: number[] = [];
  private readonly keySizes: number[] = [];
  private readonly valueSizes: number[] = [];
  private rawOffset = 0;

  constructor(
    readonly header: SnapshotHeader,
    readonly source: string,
    private readonly limits: ReadLimits,
  ) {
    const itemBytes = maxItemCborBytes(limits);
    this.small = surelySmallPairBytes(limits);
    // A version 1 chunk [keys, values]: at most CHUNK_PAIRS of each, every key and value within the limits.
    this.chunkScan = { maxDepth: limits.maxDepth + 2, maxStringBytes: itemBytes, maxCount: CHUNK_PAIRS, countAt: 1 };
    this.endScan = { maxDepth: limits.maxDepth + 1, maxStringBytes: itemBytes };
    // Version 2 group items [n, keys, values] (chunk-v2.ts): each key and value within the limits.
    this.elemScan = { maxDepth: limits.maxDepth, maxStringBytes: itemBytes };
  }

  /** The scan of the items of a frame of `kind`; `first` tells the state item of a one-frame payload. */
  private scanner(kind: FrameKind, first: () => boolean): ItemScanner {
    const v2 = this.header.formatVersion >= 2;
    let scanned = 0; // items of this frame scanned whole
    return (buf, pos, end, avail) => {
      this.sizes.length = 0;
      if ((kind === 'state' && scanned === 0) || (kind === 'any' && first())) {
        const e = this.stateItemScan(buf, pos, end, avail);
        if (e >= 0) scanned++;
        return e;
      }
      // Anything after the state item in its frame is refused once decoded (within the limits of any item).
      if (kind === 'end' || kind === 'state') return cborScan(buf, pos, end, avail, this.endScan);
      if (v2 && buf[pos] === 0x83) return scanGroupV2(buf, pos, end, avail, CHUNK_PAIRS, this.elemScan, this.keySizes, this.valueSizes);
      if (kind === 'any' && buf[pos]! >> 5 === 4) return cborScan(buf, pos, end, avail, this.chunkScan, this.sizes, 2);
      return cborScan(buf, pos, end, avail, this.endScan);
    };
  }

  /**
   * The scan of the state item `["raftsnap-state", v]`: an item deeper or longer than that is no
   * state item, a damaged payload (not a limit that raising it would help).
   */
  private readonly stateItemScan: ItemScanner = (buf, pos, end, avail) => {
    try {
      return cborScan(buf, pos, end, avail, this.stateScan);
    } catch (e) {
      if (e instanceof CborScanError && e.kind === 'limit') return this.bad('does not start with the state item', 0);
      throw e;
    }
  };

  /** The raw items of the payload (`input`: all of it, from its first byte), with the kind of frame each came from. */
  private *items(input: ZstdInput): Generator<RawItem & { kind: FrameKind; frame: number }> {
    const h = this.header;
    const f = h.frames;
    if (f === null) {
      let n = 0;
      for (const it of zstdCborItems(oneFrame(input), h.rawSize, this.scanner('any', () => n === 0))) {
        n++;
        yield { ...it, kind: 'any', frame: 0 };
      }
      return;
    }
    const pieces = input instanceof Uint8Array ? null : new FramePieces(input);
    const spans: Array<[FrameSpan, FrameKind]> = [[f.state, 'state'], ...f.chunks.map((c): [FrameSpan, FrameKind] => [c, 'chunk']), [f.end, 'end']];
    for (let j = 0; j < spans.length; j++) {
      const [sp, kind] = spans[j]!;
      const frameInput = pieces ? pieces.take(sp.size) : oneFrame((input as Uint8Array).subarray(sp.offset, sp.offset + sp.size));
      for (const it of zstdCborItems(frameInput, sp.rawSize, this.scanner(kind, () => false))) {
        yield { bytes: it.bytes, offset: sp.rawOffset + it.offset, kind, frame: j };
      }
    }
  }

  /** Every chunk of the payload, in order; then the end item's checks (counts, sessions). Throws StorageError. */
  *all(input: ZstdInput): Generator<SnapshotChunk> {
    const h = this.header;
    let item = 0;
    let n = 0;
    let end: Record<string, Json> | null = null;
    // Format 3: pairs of the chunk frame being read, and its items.
    let frame = -1;
    let framePairs = 0;
    let chunk: ChunkFrame | null = null;
    const endFrame = (): void => {
      if (chunk && framePairs !== chunk.pairs) this.bad(`has a chunk frame of ${framePairs} pairs where its header declares ${chunk.pairs}`);
    };
    try {
      for (const it of this.items(input)) {
        this.rawOffset = it.offset;
        if (it.frame !== frame) {
          endFrame();
          frame = it.frame;
          framePairs = 0;
          chunk = it.kind === 'chunk' ? h.frames!.chunks[frame - 1]! : null;
        }
        const v = decodeCborRaw(it.bytes);
        if (item++ === 0) {
          if (it.kind !== 'any' && it.kind !== 'state') this.bad('does not start with the state item', it.offset);
          if (!Array.isArray(v) || v[0] !== SNAPSHOT_STATE_TAG || v[1] !== h.formatVersion) this.bad('does not start with the state item', it.offset);
          continue;
        }
        if (it.kind === 'state') this.bad('has more than the state item in its first frame', it.offset);
        if (end !== null) this.bad('has items after the end item', it.offset);
        if (!Array.isArray(v)) {
          if (it.kind === 'chunk') this.bad('has an item that is not a group in a chunk frame', it.offset);
          const e = toJson(v);
          if (e === null || typeof e !== 'object' || Array.isArray(e)) this.bad('has an unknown item', it.offset);
          end = e as Record<string, Json>;
          continue;
        }
        if (it.kind === 'end') this.bad('has a chunk in its end frame', it.offset);
        const c = this.chunkOf(v, it.offset, chunk);
        if (n + c.keys.length > h.keyCount) this.bad(`holds more keys than the header's ${h.keyCount}`, it.offset);
        n += c.keys.length;
        framePairs += c.keys.length;
        this.keysRead = n;
        yield c;
      }
      endFrame();
    } catch (e) {
      this.translate(e);
    }
    if (end === null) return this.bad('has no end item');
    const endItem = end as Record<string, Json>;
    if (endItem['keyCount'] !== n || n !== h.keyCount) return this.bad(`holds ${n} keys but the header says ${h.keyCount}`);
    if ('sessions' in endItem) this.sessions = endItem['sessions']!;
  }

  /**
   * Format 3: the pairs of chunk frame `j` of `payload` (the whole payload, in memory, its CRC
   * checked), decoded on their own: the same checks as `all` makes, and every key in the frame's
   * shards. Throws StorageError.
   */
  frame(payload: Uint8Array, j: number): { keys: Json[]; values: Json[] } {
    const keys: Json[] = [];
    const values: Json[] = [];
    for (const c of this.frameGroups(payload, j)) {
      for (let i = 0; i < c.keys.length; i++) {
        keys.push(c.keys[i]!);
        values.push(c.values[i]!);
      }
    }
    return { keys, values };
  }

  /**
   * `frame`'s pairs a group item at a time (a chunk's groups hold its keys of one kind each), each
   * decoded when asked for: the frame's pair count is checked when the last one has been given.
   */
  *frameGroups(payload: Uint8Array, j: number): Generator<{ keys: Json[]; values: Json[] }> {
    const f = this.header.frames?.chunks[j];
    if (!f) throw new RangeError(`no chunk frame ${j}`);
    let n = 0;
    try {
      for (const it of zstdCborItems(oneFrame(payload.subarray(f.offset, f.offset + f.size)), f.rawSize, this.scanner('chunk', () => false))) {
        const offset = f.rawOffset + it.offset;
        this.rawOffset = offset;
        const v = decodeCborRaw(it.bytes);
        if (!Array.isArray(v)) this.bad('has an item that is not a group in a chunk frame', offset);
        const c = this.chunkOf(v, offset, f);
        n += c.keys.length;
        if (n > f.pairs) break;
        yield { keys: c.keys, values: c.values };
      }
    } catch (e) {
      this.translate(e);
    }
    if (n !== f.pairs) this.bad(`has a chunk frame of ${n} pairs where its header declares ${f.pairs}`, f.rawOffset);
  }

  /**
   * Format 3: decode the state frame and the end frame of `payload` (in memory, its CRC checked)
   * and check them as `all` does (the state item alone in the first, the end item alone in the
   * last, its keyCount the header's); returns the end item's client table.
   */
  edges(payload: Uint8Array): Json | undefined {
    const f = this.header.frames;
    if (!f) throw new RangeError('edges: not a format 3 payload');
    const items = (sp: FrameSpan, kind: FrameKind): unknown[] => {
      const out: unknown[] = [];
      for (const it of zstdCborItems(oneFrame(payload.subarray(sp.offset, sp.offset + sp.size)), sp.rawSize, this.scanner(kind, () => false))) {
        this.rawOffset = sp.rawOffset + it.offset;
        out.push(decodeCborRaw(it.bytes));
      }
      return out;
    };
    try {
      const st = items(f.state, 'state');
      const v = st[0];
      if (st.length !== 1 || !Array.isArray(v) || v[0] !== SNAPSHOT_STATE_TAG || v[1] !== this.header.formatVersion) this.bad('does not start with the state item alone', 0);
      const en = items(f.end, 'end');
      const e = en.length === 1 && !Array.isArray(en[0]) ? toJson(en[0]) : null;
      if (e === null || typeof e !== 'object' || Array.isArray(e)) return this.bad('has no end item alone in its last frame', f.end.rawOffset);
      const count = e['keyCount'];
      // As JSON, shortened: the value comes from the file and may hold a newline (one line per error).
      if (count !== this.header.keyCount) this.bad(`has an end item of ${count === undefined ? 'no' : showKey(count)} keys but the header says ${this.header.keyCount}`, f.end.rawOffset);
      return 'sessions' in e ? e['sessions']! : undefined;
    } catch (err) {
      return this.translate(err);
    }
  }

  /** A chunk item (a version 2 group, or a version 1 chunk), checked; in a chunk frame `f`, every key in its shards. */
  private chunkOf(v: unknown[], offset: number, f: ChunkFrame | null): SnapshotChunk {
    const h = this.header;
    const lim = this.limits;
    let keys: Json[];
    let values: Json[];
    let keyBytes: number[];
    let valueBytes: number[];
    if (h.formatVersion >= 2 && v.length === 3) {
      // A version 2 group [n, keys, values] (chunk-v2.ts), sizes from its scan.
      ({ keys, values, keyBytes, valueBytes } = decodeGroupV2(v, this.keySizes, this.valueSizes, (what) => this.bad(what, offset)));
    } else {
      if (v.length !== 2 || f !== null) this.bad('has a malformed chunk', offset);
      values = toJsonArray(v[1]);
      const count = values.length;
      if (v[0] instanceof Map) {
        // Key run: the keys are start, start + 1, ..., start + count - 1.
        const start = keyRunOf(v[0], count, (what) => this.bad(what, offset));
        keys = new Array<Json>(count);
        for (let i = 0; i < count; i++) keys[i] = start + i;
      } else {
        keys = toJsonArray(v[0]);
        if (keys.length !== count) this.bad('has a chunk with unequal key and value counts', offset);
      }
      const sizes = this.sizes;
      const vBase = sizes.length - count;
      const run = vBase !== count;
      keyBytes = run ? keys.map((k) => intBytes(k as number)) : sizes.slice(0, count);
      valueBytes = sizes.slice(vBase);
    }
    const count = keys.length;
    // Every key and value is within the depth limit (the scan) and within the CBOR size a pair
    // of maxValueBytes of JSON can take; pairs that may be larger as JSON are measured.
    for (let i = 0; i < count; i++) {
      if (keyBytes[i]! + valueBytes[i]! <= this.small) continue;
      const chars = jsonChars(keys[i]!) + jsonChars(values[i]!);
      if (chars > lim.maxValueBytes) {
        this.overLimit(
          `holds key ${showKey(keys[i]!)} whose key and value take ${chars} bytes as JSON, more than the limit of ${lim.maxValueBytes} ` +
            `that serve accepts (${raise('maxValueBytes')})`,
          offset,
        );
      }
    }
    if (f !== null) {
      for (let i = 0; i < count; i++) {
        const s = keyShard(keys[i]!);
        if (s < f.firstShard || s > f.lastShard) {
          this.bad(`has key ${showKey(keys[i]!)} of shard ${s} in a chunk frame of the shards ${f.firstShard} to ${f.lastShard}`, offset);
        }
      }
    }
    return { keys, values, keyBytes, valueBytes, rawOffset: offset };
  }

  bad(what: string, rawOffset?: number): never {
    throw new StorageError('BAD_PAYLOAD', this.source, `snapshot payload passes its checksum but ${what}${at(rawOffset)}`, this.header.payloadOffset);
  }

  private overLimit(what: string, rawOffset: number): never {
    throw new StorageError('LIMIT', this.source, `snapshot payload ${what}${at(rawOffset)}`, this.header.payloadOffset);
  }

  /** Any failure while decoding as the StorageError it stands for. */
  private translate(e: unknown): never {
    const lim = this.limits;
    if (e instanceof StorageError) throw e;
    if (e instanceof CborScanError) {
      const off = e.offset;
      if (e.kind === 'limit') {
        if (e.which === 'depth') {
          return this.overLimit(`holds a key or value nested more than ${lim.maxDepth} levels deep, deeper than serve accepts (${raise('maxDepth')})`, off);
        }
        if (e.which === 'string') {
          return this.overLimit(
            `holds a string of ${e.declared} bytes, larger than a key and value within the limit of ${lim.maxValueBytes} bytes as JSON ` +
              `that serve accepts (${raise('maxValueBytes')})`,
            off,
          );
        }
        if (e.which === 'count') return this.overLimit(`holds a chunk of ${e.declared} pairs, more than the ${CHUNK_PAIRS} a chunk may hold`, off);
        return this.overLimit(`holds ${e.message}`, off);
      }
      return this.bad(`is not valid CBOR (${e.message})`, off);
    }
    if (e instanceof ZstdStreamError) {
      if (e.overrun) {
        const msg = /too much memory/i.test(e.message) ? `is a zstd frame that needs a window of more than ${2 ** ZSTD_WINDOW_LOG_MAX} bytes (${e.message})` : e.message;
        throw new StorageError('LIMIT', this.source, `snapshot payload ${msg}`, this.header.payloadOffset);
      }
      return this.bad(`cannot be decompressed (${e.message})`);
    }
    if (e instanceof NotJsonError) return this.bad(`holds a non-JSON value (${e.message})`, this.rawOffset);
    return this.bad(`is not valid CBOR (${(e as Error).message})`, this.rawOffset);
  }
}

/**
 * The compressed bytes of a file read a piece at a time, handed out a frame at a time: `take(n)`
 * gives the next n bytes as an input of their own (ending when they are given out), so that each
 * frame is decompressed as a frame of its own and a frame that ends early or late is an error.
 */
class FramePieces {
  private rest: Uint8Array = new Uint8Array(0);
  private done = false;

  constructor(private readonly pull: () => Uint8Array | null) {}

  take(n: number): () => Uint8Array | null {
    let left = n;
    return () => {
      if (left === 0) return null;
      if (this.rest.length === 0 && !this.done) {
        const p = this.pull();
        if (p === null) this.done = true;
        else this.rest = p;
      }
      if (this.rest.length === 0) return null;
      const give = this.rest.subarray(0, Math.min(left, this.rest.length));
      this.rest = this.rest.subarray(give.length);
      left -= give.length;
      return give;
    };
  }
}

/**
 * Compressed bytes held in memory, checked to be one zstd frame: zstd decompresses a run of frames
 * (skippable ones too) in one call, where the streaming reader of a file ends at the first frame's
 * end and refuses what follows; both must read the same bytes alike.
 */
function oneFrame(bytes: ZstdInput): ZstdInput {
  if (!(bytes instanceof Uint8Array)) return bytes;
  let size: number;
  try {
    size = zstdBinding.findFrameCompressedSize(bytes);
  } catch {
    return bytes; // not a whole frame: decompression says what is wrong
  }
  if (size < bytes.length) throw new ZstdStreamError(`${bytes.length - size} bytes after the end of the zstd frame`);
  return bytes;
}

/** CBOR bytes of an integer key of a key run, as a writer would write it. */
function intBytes(k: number): number {
  const m = k < 0 ? -1 - k : k;
  if (!Number.isSafeInteger(k) || m >= 2 ** 32) return 9;
  return m < 24 ? 1 : m < 0x100 ? 2 : m < 0x10000 ? 3 : 5;
}

function at(rawOffset: number | undefined): string {
  return rawOffset === undefined ? '' : ` (at byte ${rawOffset} of the decompressed payload)`;
}

function jsonChars(v: Json): number {
  return JSON.stringify(v ?? null).length;
}

function showKey(k: Json): string {
  const s = JSON.stringify(k);
  return s.length > 40 ? s.slice(0, 39) + '…' : s;
}

/**
 * Start of a key run item `{"start": s, "count": n}` of a chunk with `values` values. Any other
 * map, a start or count that is not a safe integer, a count that differs from the number of
 * values, or a run whose last key is not a safe integer is a malformed chunk.
 */
function keyRunOf(m: Map<unknown, unknown>, values: number, bad: (what: string) => never): number {
  const start = m.get('start');
  const count = m.get('count');
  if (m.size !== 2 || typeof start !== 'number' || typeof count !== 'number') return bad('has a malformed key run');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(start + Math.max(count - 1, 0))) {
    return bad('has a key run outside the safe integers');
  }
  if (count !== values) bad('has a chunk with unequal key and value counts');
  return start === 0 ? 0 : start;
}
