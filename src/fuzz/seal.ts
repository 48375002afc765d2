/**
 * Building and re-sealing files for hostile fixtures and for the fuzzer: a snapshot from raw CBOR
 * items (any bytes, valid or not) with correct checksums, and WAL segments whose records and
 * commit records get correct checksums again after a mutation, so that a test reaches the decoder
 * behind the checksums. Never used by raftsnap itself.
 */
import { Decoder, Encoder } from 'cbor-x';
import type { Json } from '../raft/types.js';
import { encodeChunkV2 } from '../storage/chunk-v2.js';
import { ZstdFrameWriter, crc32, encodeCbor } from '../storage/codec.js';
import { SNAPSHOT_CODEC, assembleSnapshot } from '../storage/snapshot.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, WAL_SECTOR_BYTES } from '../storage/wal.js';

/** Header fields of a hand-made snapshot (defaults: index 1, term 1, the true sizes and CRC). */
export interface HandHeader {
  index?: number;
  term?: number;
  config?: string[];
  createdAt?: number;
  nodeId?: string | null;
  codec?: string;
  rawSize?: number;
  compressedSize?: number;
  keyCount?: number;
  hasSessions?: boolean;
  payloadCrc?: number;
  /** Format version in the preamble; default 1, the version of the hand-made payloads (`stateItems`, fixtures). */
  formatVersion?: number;
  /** More header fields, after these (a value of undefined: the field is left out). */
  extra?: Record<string, unknown>;
}

const plain = new Encoder({ useRecords: false, structuredClone: false, pack: false, variableMapSize: true, tagUint8Array: false, useFloat32: 0 } as ConstructorParameters<typeof Encoder>[0]);

/** CBOR of a value, objects as plain maps (no tags). */
export function cbor(v: unknown): Buffer {
  return Buffer.from(plain.encode(v));
}

/** One zstd frame (level 3, streaming, no content size, as the writer makes them) of `raw`. */
export function zstdFrame(raw: Uint8Array | Uint8Array[]): { payload: Buffer; rawSize: number } {
  const w = new ZstdFrameWriter(3);
  for (const part of Array.isArray(raw) ? raw : [raw]) w.write(part);
  const payload = Buffer.from(w.end());
  // Hand the compression context back: a context left to the garbage collector holds native
  // memory the collector does not see (a fuzzing run of 30,000 frames grew to 16 GB without this).
  w.release();
  return { payload, rawSize: w.rawSize };
}

/**
 * A snapshot file whose payload is the CBOR items given (values are encoded; Uint8Arrays are taken
 * as raw CBOR bytes), compressed as one frame, with a header whose every field can be overridden
 * and whose checksums are correct for what it says.
 */
export function snapshotFromItems(items: Array<unknown>, h: HandHeader = {}): Buffer {
  const raw = items.map((x) => (x instanceof Uint8Array ? x : cbor(x)));
  const { payload, rawSize } = zstdFrame(raw);
  return snapshotFromPayload(payload, rawSize, h);
}

/** A snapshot file around a compressed payload, its header (overridable) sealed with correct CRCs. */
export function snapshotFromPayload(payload: Uint8Array, rawSize: number, h: HandHeader = {}): Buffer {
  const header = encodeCbor({
    index: h.index ?? 1,
    term: h.term ?? 1,
    config: h.config ?? ['n1'],
    createdAt: h.createdAt ?? Date.UTC(2024, 0, 2, 3, 4, 5),
    nodeId: h.nodeId === undefined ? 'n1' : h.nodeId,
    codec: h.codec ?? SNAPSHOT_CODEC,
    rawSize: h.rawSize ?? rawSize,
    compressedSize: h.compressedSize ?? payload.length,
    keyCount: h.keyCount ?? 0,
    hasSessions: h.hasSessions ?? false,
    payloadCrc: h.payloadCrc ?? crc32(payload),
    ...Object.fromEntries(Object.entries(h.extra ?? {}).filter(([, v]) => v !== undefined)),
  });
  return assembleSnapshot(h.formatVersion ?? 1, header, payload);
}

/** What a chunk frame of a hand-made format 3 file declares: its pairs and the range of its keys' shards. */
export interface HandChunk {
  pairs: number;
  firstShard: number;
  lastShard: number;
}

/**
 * A format 3 snapshot file (docs/FORMAT.md, "Version 3: frames") whose payload is `frames`, each a
 * list of CBOR items (as `snapshotFromItems` takes them) compressed as a zstd frame of its own: the
 * state frame, the chunk frames, the end frame. The header's frame table holds the true sizes of
 * each frame and `chunks[j]` for chunk frame j; keyCount defaults to the sum of their pairs. Any
 * header field can be overridden, the table's fields too (`h.extra`: `stateFrame`, `chunkFrames`,
 * `endFrame`; undefined leaves one out); the checksums are correct for what the header says.
 */
export function snapshotFromFrames(frames: unknown[][], chunks: HandChunk[], h: HandHeader = {}): Buffer {
  if (frames.length < 2 || chunks.length !== frames.length - 2) throw new RangeError(`snapshotFromFrames: ${frames.length} frames and ${chunks.length} chunk entries`);
  const made = frames.map((items) => zstdFrame(items.map((x) => (x instanceof Uint8Array ? x : cbor(x)))));
  const span = (j: number): [number, number] => [made[j]!.payload.length, made[j]!.rawSize];
  const payload = Buffer.concat(made.map((f) => f.payload));
  const rawSize = made.reduce((a, f) => a + f.rawSize, 0);
  const table = {
    stateFrame: span(0),
    chunkFrames: chunks.map((c, j) => [...span(j + 1), c.pairs, c.firstShard, c.lastShard]),
    endFrame: span(frames.length - 1),
  };
  return snapshotFromPayload(payload, rawSize, {
    keyCount: chunks.reduce((a, c) => a + c.pairs, 0),
    formatVersion: 3,
    ...h,
    extra: { ...table, ...h.extra },
  });
}

/** The version 2 group items (chunk-v2.ts) a writer makes of `pairs` as one chunk, each a copy of its CBOR bytes. */
export function groupItems(pairs: Array<[Json, Json]>): Buffer[] {
  const out: Buffer[] = [];
  encodeChunkV2(
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
    pairs.length,
    0,
    (item) => void out.push(Buffer.from(item)),
  );
  return out;
}

/** The items of a well-formed payload holding `pairs` (one chunk per `chunk` pairs, key arrays). */
export function stateItems(pairs: Array<[Json, Json]>, chunk = 8192, sessions?: Json): unknown[] {
  const items: unknown[] = [['raftsnap-state', 1]];
  for (let i = 0; i < pairs.length; i += chunk) {
    const part = pairs.slice(i, i + chunk);
    items.push([part.map((p) => p[0]), part.map((p) => p[1])]);
  }
  items.push(sessions === undefined ? { keyCount: pairs.length } : { keyCount: pairs.length, sessions });
  return items;
}

/**
 * Give every record of a (possibly mutated) WAL segment a correct checksum again, and every commit
 * record the CRC of the batch it covers, as far as the record lengths can be followed. The header
 * CRC is recomputed too. Returns a new buffer.
 */
export function resealWal(seg: Uint8Array): Buffer {
  const b = Buffer.from(seg);
  if (b.length >= SEGMENT_HEADER_BYTES) b.writeUInt32BE(crc32(b.subarray(0, 28)), 28);
  let pos = SEGMENT_HEADER_BYTES;
  let batchStart = pos;
  while (pos + RECORD_HEADER_BYTES <= b.length) {
    const len = b.readUInt32BE(pos);
    if (len === 0) {
      // Padding: skip to the next sector boundary.
      const next = pos + WAL_SECTOR_BYTES - (pos % WAL_SECTOR_BYTES);
      if (pos % WAL_SECTOR_BYTES === 0 || next > b.length) break;
      pos = next;
      continue;
    }
    if (pos + 8 + len > b.length) break;
    const type = b[pos + 8];
    if (type === 4 && len >= 2) {
      // A commit record [batchStart, batchCrc]: point it at the batch it closes.
      const body = cbor([batchStart, crc32(b.subarray(batchStart, pos))]);
      if (body.length === len - 1) b.set(body, pos + 9);
      b.writeUInt32BE(crc32(b.subarray(pos + 8, pos + 8 + len)), pos + 4);
      pos += 8 + len;
      batchStart = pos;
      continue;
    }
    b.writeUInt32BE(crc32(b.subarray(pos + 8, pos + 8 + len)), pos + 4);
    pos += 8 + len;
  }
  return b;
}

/** A WAL record of `type` around raw payload bytes (any bytes), with a correct checksum. */
export function walRecord(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[8] = type;
  out.set(payload, RECORD_HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

/**
 * Give a (possibly mutated) snapshot file correct checksums again where its layout can still be
 * followed: the header's payloadCrc and compressedSize for the bytes after the header (when the
 * header still decodes as a CBOR map), and the header CRC. Returns a new buffer.
 */
export function resealSnapshot(file: Uint8Array): Buffer {
  const b = Buffer.from(file);
  if (b.length < 16) return b;
  const hlen = b.readUInt32BE(12);
  if (hlen === 0 || hlen > 1 << 20 || 20 + hlen > b.length) return b;
  let header: Uint8Array = b.subarray(16, 16 + hlen);
  const payload = b.subarray(20 + hlen);
  try {
    const h = new Decoder({ useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Decoder>[0]).decode(header) as Record<string, unknown>;
    if (h !== null && typeof h === 'object' && !Array.isArray(h)) {
      header = encodeCbor({ ...h, compressedSize: payload.length, payloadCrc: crc32(payload) });
      return assembleSnapshot(b.readUInt16BE(8), header, payload);
    }
  } catch {
    // not a map any more: only the header CRC
  }
  b.writeUInt32BE(crc32(b.subarray(0, 16 + hlen)), 16 + hlen);
  return b;
}
