/**
 * A format 3 snapshot file held in memory, its checksums verified, whose chunks can be decoded in
 * any order and each on its own (docs/FORMAT.md, "Frames"): a node recovering a large state loads
 * first the chunks that may hold the keys it is asked about, and the rest in the background.
 * Every chunk is checked as the streaming reader checks it (limits, the format's rules, and that
 * its keys are in the shards the header says).
 */
import type { Json } from '../raft/types.js';
import { readLimits, type ReadLimits } from '../limits.js';
import { fsError } from './errors.js';
import { fsOf, type IoOptions } from './fsutil.js';
import { PayloadDecoder } from './snapshot-payload.js';
import { verifySnapshotBytes } from './snapshot-read.js';
import type { ChunkFrame, SnapshotHeader } from './snapshot.js';

export class FramedSnapshot {
  /** The end item's client table (undefined when there is none). */
  readonly sessions: Json | undefined;
  private readonly decoder: PayloadDecoder;
  private readonly payload: Uint8Array;

  private constructor(
    readonly header: SnapshotHeader,
    bytes: Uint8Array,
    readonly source: string,
    limits: ReadLimits,
  ) {
    this.payload = bytes.subarray(header.payloadOffset);
    this.decoder = new PayloadDecoder(header, source, limits);
    this.sessions = this.decoder.edges(this.payload);
  }

  /**
   * The file's bytes, checked (length, header, payload CRC, the state and end items); null when
   * the file is a version 1 or 2 file (one frame: no chunk can be read on its own). Throws StorageError.
   */
  static fromBytes(bytes: Uint8Array, source = '<buffer>', limits: ReadLimits = readLimits()): FramedSnapshot | null {
    const h = verifySnapshotBytes(bytes, source, limits);
    return h.frames === null ? null : new FramedSnapshot(h, bytes, source, limits);
  }

  /** Read the whole file (through the injected file system) and check it as `fromBytes` does. */
  static open(file: string, opts: IoOptions & { limits?: ReadLimits } = {}): FramedSnapshot | null {
    let bytes: Buffer;
    try {
      bytes = fsOf(opts).readFile(file);
    } catch (e) {
      throw fsError(e, file, 'read snapshot');
    }
    return FramedSnapshot.fromBytes(bytes, file, opts.limits ?? readLimits());
  }

  /** The chunk frames, in file order. */
  get chunks(): readonly ChunkFrame[] {
    return this.header.frames!.chunks;
  }

  /** Decode chunk `j`: its pairs, checked. Throws StorageError. */
  chunk(j: number): { keys: Json[]; values: Json[] } {
    return this.decoder.frame(this.payload, j);
  }

  /** Chunk `j`'s pairs a group at a time, each decoded when asked for (its checks as `chunk`'s, the count at the end). */
  groups(j: number): Iterable<{ keys: Json[]; values: Json[] }> {
    return this.decoder.frameGroups(this.payload, j);
  }
}
