/**
 * A simulated disk for one node: the real WAL record format (src/storage/wal.ts) in in-memory
 * segments, and snapshot files as bytes in the real snapshot format (src/storage/snapshot.ts).
 *
 * Durability model:
 *  - `append` / `setHardState` / `marker` buffer records in the process (nothing on disk yet);
 *  - `sync()` writes the buffered records to the newest segment (rotating first when it is full)
 *    and then fsyncs: the written bytes become durable;
 *  - `crash()` loses the buffer and every written byte that is not durable, except that a torn
 *    write may leave a random prefix of the unsynced bytes of the newest segment behind (a record
 *    cut in the middle, which recovery detects by its CRC and cuts off: the torn part is lost);
 *  - snapshot files are written atomically and durably (temp file, fsync, rename), so they are
 *    never torn; a partially received snapshot lives in a `.recv` file that recovery deletes;
 *    a saved or received snapshot is recorded by a marker record in the WAL and synced at once,
 *    and retention keeps the `retain` newest files (as NodeStorage does);
 *  - the broken mode `ackBeforePersist` makes `sync()` acknowledge without fsync: a crash loses
 *    what was written since the node started.
 *
 * Recovery mirrors src/storage/datadir.ts: the newest snapshot that passes its checksums, the WAL
 * scanned segment by segment (a damaged tail is cut), records replayed with the shared LogReplay
 * rules, entries after the snapshot, the last hard state with commit raised to the snapshot.
 */
import { compactionLimit } from '../storage/node-storage.js';
import { Buffer } from 'node:buffer';
import type { Json } from '../raft/types.js';
import type { Entry, HardState, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import { LogReplay } from '../storage/replay.js';
import { decodeSnapshot, encodeSnapshot, snapshotFileName, verifySnapshotBytes } from '../storage/snapshot.js';
import { EMPTY_HARD_STATE, SEGMENT_HEADER_BYTES, encodeRecord, encodeSegmentHeader, scanSegmentBytes, type WalRecord } from '../storage/wal.js';
import type { Random } from './random.js';

export interface DiskOptions {
  /** Rotate to a new WAL segment once the newest one holds this many bytes. */
  segmentBytes: number;
  /** Newest snapshot files kept by compaction. */
  retain: number;
  /** The deliberately broken mode: sync() does not make writes durable. */
  ackBeforePersist: boolean;
  /**
   * Replay as if storage bug "wal-marker-gap" were fixed (see docs/SIMULATION.md): after a snapshot
   * marker emptied the log, the next entry starts the log even when entries between the marker and
   * it were in a deleted segment (recovery still fails if the snapshot does not cover them).
   */
  assumeGapFix?: boolean;
}

export const DEFAULT_DISK_OPTIONS: DiskOptions = { segmentBytes: 2048, retain: 2, ackBeforePersist: false };

interface Segment {
  seq: number;
  firstIndex: number;
  chunks: Buffer[];
  /** Bytes written (possibly not durable). */
  len: number;
  /** Bytes made durable by fsync. */
  durable: number;
  /** Largest entry index in the segment (0 if none). */
  maxIndex: number;
}

export interface SnapshotFile {
  meta: SnapshotMeta;
  bytes: Buffer;
}

export interface Recovered {
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; pairs: Array<[Json, Json]>; sessions?: Json } | null;
  entries: Entry[];
  /** Bytes cut off torn segment tails during this recovery. */
  tornBytes: number;
}

export interface DiskStats {
  syncs: number;
  crashes: number;
  tornCrashes: number;
  tornBytesCut: number;
  snapshotsSaved: number;
  snapshotsReceived: number;
  segmentsDeleted: number;
}

export class RecoveryError extends Error {}

/** LogReplay with the proposed fix for the marker gap (only with DiskOptions.assumeGapFix). */
class TolerantReplay extends LogReplay {
  override apply(rec: WalRecord, where: { file: string; offset?: number }): void {
    if (rec.type === 'entry' && this.log.length === 0 && rec.entry.index > this.base + 1) {
      this.base = rec.entry.index - 1;
      this.log = [rec.entry];
      return;
    }
    super.apply(rec, where);
  }
}
/** The driver asked storage for an append that would leave a gap (NodeStorage throws INVALID). */
export class StorageGap extends Error {}

export class SimDisk {
  private segments: Segment[] = [];
  private pending: Array<{ bytes: Buffer; entryIndex: number; hardState: HardState | null }> = [];
  private nextSeq = 1;
  /** Index of the last entry appended since recovery (for the gap check). */
  private lastIndex = 0;
  /** The last hard state written (each new segment starts with it). */
  private hardState: HardState = { ...EMPTY_HARD_STATE };
  /** Durable snapshot files, oldest first (by index). */
  private snaps: SnapshotFile[] = [];
  /** A transfer being received (a `.recv` file; lost in a crash). */
  private recv: { meta: SnapshotMeta; size: number; chunks: Buffer[]; held: number } | null = null;
  readonly stats: DiskStats = { syncs: 0, crashes: 0, tornCrashes: 0, tornBytesCut: 0, snapshotsSaved: 0, snapshotsReceived: 0, segmentsDeleted: 0 };

  constructor(
    readonly opts: DiskOptions = DEFAULT_DISK_OPTIONS,
    /** Clock for snapshot headers' createdAt (keeps the bytes deterministic). */
    private readonly clock: () => number = () => 0,
    readonly nodeId: string | null = null,
  ) {}

  // -------------------------------------------------------------------------------------------
  // WAL

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // NodeStorage's check: an append may replace a suffix but never leave a gap.
    const last = Math.max(this.lastIndex, this.newestSnapshot()?.meta.index ?? 0);
    if (entries[0]!.index > last + 1) throw new StorageGap(`append of entry ${entries[0]!.index} after last index ${last} would leave a gap`);
    for (const e of entries) this.buffer({ type: 'entry', entry: e });
    this.lastIndex = entries[entries.length - 1]!.index;
  }

  setHardState(hs: HardState): void {
    this.buffer({ type: 'hardState', hardState: { ...hs } });
  }

  /** A snapshot marker: the stored log is replaced by the snapshot (Figure 13 rules 6-7 on replay). */
  marker(meta: SnapshotMeta): void {
    this.buffer({ type: 'snapshot', index: meta.index, term: meta.term, file: snapshotFileName(meta) });
  }

  private buffer(rec: WalRecord): void {
    this.pending.push({
      bytes: encodeRecord(rec),
      entryIndex: rec.type === 'entry' ? rec.entry.index : 0,
      hardState: rec.type === 'hardState' ? rec.hardState : null,
    });
  }

  /** Bytes buffered or written but not durable. */
  get unsyncedBytes(): number {
    let n = 0;
    for (const p of this.pending) n += p.bytes.length;
    for (const s of this.segments) n += s.len - s.durable;
    return n;
  }

  /** Write the buffered records (no fsync yet). */
  write(): void {
    const pend = this.pending;
    this.pending = [];
    for (const p of pend) {
      let cur = this.segments[this.segments.length - 1];
      if (!cur || (cur.len >= this.opts.segmentBytes && cur.len > SEGMENT_HEADER_BYTES)) {
        cur = this.rotate(p.entryIndex > 0 ? p.entryIndex : cur ? cur.maxIndex + 1 : 1);
      }
      cur.chunks.push(p.bytes);
      cur.len += p.bytes.length;
      if (p.entryIndex > cur.maxIndex) cur.maxIndex = p.entryIndex;
      if (p.hardState) this.hardState = p.hardState;
    }
  }

  /** fsync: what was written becomes durable (not in the broken mode). */
  fsync(): void {
    if (this.opts.ackBeforePersist) return;
    for (const s of this.segments) s.durable = s.len;
  }

  /** Group commit: write everything buffered, then fsync once. */
  sync(): void {
    this.stats.syncs++;
    this.write();
    this.fsync();
  }

  /** A new segment starting with the header and the current hard state (created atomically). */
  private rotate(firstIndex: number): Segment {
    const head = [encodeSegmentHeader(this.nextSeq, firstIndex), encodeRecord({ type: 'hardState', hardState: this.hardState })];
    const len = head[0]!.length + head[1]!.length;
    const seg: Segment = { seq: this.nextSeq++, firstIndex, chunks: head, len, durable: this.opts.ackBeforePersist ? 0 : len, maxIndex: 0 };
    this.segments.push(seg);
    return seg;
  }

  /**
   * The core dropped the log through `upToIndex`: delete the oldest segments whose entries all lie
   * at or below it, kept below the oldest retained snapshot's index (compactionLimit) so that recovery can always
   * fall back (never the newest segment). Mirrors NodeStorage.compactLog / WalWriter.deleteCovered.
   */
  compactLog(upToIndex: number): void {
    this.sync();
    const limit = compactionLimit(upToIndex, this.snaps);
    if (limit <= 0) return;
    while (this.segments.length > 1 && this.segments[0]!.maxIndex <= limit) {
      this.segments.shift();
      this.stats.segmentsDeleted++;
    }
  }

  /** Keep only the `retain` newest snapshot files. */
  pruneSnapshots(retain = this.opts.retain): void {
    const keep = Math.max(1, retain);
    if (this.snaps.length > keep) this.snaps = this.snaps.slice(this.snaps.length - keep);
  }

  /** Total WAL bytes on disk. */
  get walBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.len;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  // -------------------------------------------------------------------------------------------
  // Snapshot files

  /** Newest durable snapshot file (by index). */
  newestSnapshot(): SnapshotFile | null {
    return this.snaps.length > 0 ? this.snaps[this.snaps.length - 1]! : null;
  }

  snapshotFiles(): readonly SnapshotFile[] {
    return this.snaps;
  }

  /** Encode and durably save a snapshot of `pairs` at `meta` (atomic: temp file, fsync, rename). */
  saveSnapshot(meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>, sessions?: Json): SnapshotFile {
    const kv: Array<[Json, Json]> = [];
    for (const [k, v] of pairs) kv.push([k, v]);
    const bytes = encodeSnapshot(meta, sessions === undefined ? { kv } : { kv, sessions }, { createdAt: this.clock(), nodeId: this.nodeId, level: 1 });
    const h = verifySnapshotBytes(bytes, 'snapshot');
    const f = { meta: { index: h.index, term: h.term, config: [...h.config] }, bytes };
    this.installFile(f);
    this.stats.snapshotsSaved++;
    return f;
  }

  /** The file is durable (temp file, fsync, rename); record it in the WAL, sync, apply retention. */
  private installFile(f: SnapshotFile): void {
    const name = snapshotFileName(f.meta);
    this.snaps = this.snaps.filter((s) => snapshotFileName(s.meta) !== name);
    this.snaps.push(f);
    this.snaps.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
    this.marker(f.meta);
    this.sync();
    this.pruneSnapshots();
  }

  loadSnapshot(meta: SnapshotMeta): Array<[Json, Json]> {
    return this.loadSnapshotState(meta).pairs;
  }

  /** The pairs and (when stored) the client session table of a snapshot on disk. */
  loadSnapshotState(meta: SnapshotMeta): { pairs: Array<[Json, Json]>; sessions?: Json } {
    const f = this.snaps.find((s) => s.meta.index === meta.index && s.meta.term === meta.term);
    if (!f) throw new RecoveryError(`snapshot ${meta.index}/${meta.term} is not on disk`);
    const c = decodeSnapshot(f.bytes, snapshotFileName(meta)).content;
    return c.sessions === undefined ? { pairs: c.kv } : { pairs: c.kv, sessions: c.sessions };
  }

  /** The SnapshotStore the Raft core reads from and receives into. */
  readonly snapshotStore: SnapshotStore = {
    current: () => {
      const f = this.newestSnapshot();
      return f ? { meta: { ...f.meta, config: [...f.meta.config] }, size: f.bytes.length } : null;
    },
    read: (offset: number, length: number) => {
      const f = this.newestSnapshot();
      if (!f) return new Uint8Array(0);
      return new Uint8Array(f.bytes.subarray(offset, Math.min(f.bytes.length, offset + length)));
    },
    receive: (meta: SnapshotMeta, size: number, offset: number, data: Uint8Array) => {
      const same = this.recv && this.recv.meta.index === meta.index && this.recv.meta.term === meta.term && this.recv.size === size;
      if (offset === 0) {
        this.recv = { meta: { ...meta, config: [...meta.config] }, size, chunks: [], held: 0 };
      } else if (!same || offset !== this.recv!.held) {
        return same ? this.recv!.held : 0;
      }
      const r = this.recv!;
      const take = Math.min(data.length, size - r.held);
      if (take > 0) {
        r.chunks.push(Buffer.from(data.subarray(0, take)));
        r.held += take;
      }
      return r.held;
    },
    finish: (meta: SnapshotMeta) => {
      const r = this.recv;
      this.recv = null;
      if (!r || r.meta.index !== meta.index || r.meta.term !== meta.term || r.held !== r.size) return false;
      const bytes = Buffer.concat(r.chunks);
      try {
        const h = verifySnapshotBytes(bytes, 'received snapshot');
        if (h.index !== meta.index || h.term !== meta.term) return false;
      } catch {
        return false;
      }
      this.installFile({ meta: { ...meta, config: [...meta.config] }, bytes });
      this.stats.snapshotsReceived++;
      return true;
    },
  };

  // -------------------------------------------------------------------------------------------
  // Crash and recovery

  /**
   * The process dies: the buffer and every non-durable byte are lost, except that with `tear` a
   * random prefix of the newest segment's unsynced bytes survives (usually ending inside a record).
   * Returns how many unsynced bytes survived.
   */
  crash(rng: Random, tear: boolean): number {
    this.stats.crashes++;
    this.pending = [];
    this.recv = null;
    let kept = 0;
    let tornDone = false;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      let keep = s.durable;
      if (tear && !tornDone && s.len > s.durable) {
        keep = s.durable + rng.int(s.len - s.durable + 1);
        kept += keep - s.durable;
        tornDone = true;
        this.stats.tornCrashes++;
      }
      if (keep < s.len) {
        const all = Buffer.concat(s.chunks).subarray(0, keep);
        s.chunks = [Buffer.from(all)];
        s.len = keep;
      }
      s.durable = s.len;
    }
    return kept;
  }

  /** Recovery at process start (see the file comment); repairs torn tails as the real one does. */
  recover(): Recovered {
    this.pending = [];
    this.recv = null;
    let tornBytes = 0;
    const replay = this.opts.assumeGapFix ? new TolerantReplay() : new LogReplay();
    const kept: Segment[] = [];
    for (const s of this.segments) {
      const buf = Buffer.concat(s.chunks);
      const name = `sim-${s.seq}.wal`;
      const scan = scanSegmentBytes(buf, name);
      if (scan.damage) {
        if (!scan.damage.tailOnly) throw new RecoveryError(`${name}: WAL corrupt in the middle: ${scan.damage.reason}`);
        tornBytes += buf.length - scan.validEnd;
        this.stats.tornBytesCut += buf.length - scan.validEnd;
        if (scan.header === null) continue; // an incomplete segment header: the segment is set aside
        s.chunks = [Buffer.from(buf.subarray(0, scan.validEnd))];
        s.len = s.durable = scan.validEnd;
      }
      s.maxIndex = 0;
      for (const r of scan.records) {
        if (r.record.type === 'entry' && r.record.entry.index > s.maxIndex) s.maxIndex = r.record.entry.index;
        try {
          replay.apply(r.record, { file: name, offset: r.offset });
        } catch (e) {
          throw new RecoveryError(`replaying ${name}: ${(e as Error).message}`);
        }
      }
      kept.push(s);
    }
    this.segments = kept;
    this.hardState = { ...replay.hardState };
    // The newest snapshot passing its checksums.
    let snap: { meta: SnapshotMeta; pairs: Array<[Json, Json]>; sessions?: Json } | null = null;
    for (let i = this.snaps.length - 1; i >= 0 && !snap; i--) {
      const f = this.snaps[i]!;
      try {
        const d = decodeSnapshot(f.bytes, snapshotFileName(f.meta));
        const meta = { index: d.header.index, term: d.header.term, config: [...d.header.config] };
        snap = d.content.sessions === undefined ? { meta, pairs: d.content.kv } : { meta, pairs: d.content.kv, sessions: d.content.sessions };
      } catch {
        this.snaps.splice(i, 1);
      }
    }
    const pos = snap ? { index: snap.meta.index, term: snap.meta.term } : null;
    let entries: Entry[];
    try {
      entries = replay.entriesAfter(pos, 'sim-disk');
    } catch (e) {
      throw new RecoveryError((e as Error).message);
    }
    this.lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : (pos?.index ?? 0);
    return { hardState: replay.hardStateWith(pos), snapshot: snap, entries, tornBytes };
  }
}
