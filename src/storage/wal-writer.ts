/**
 * The WAL writer (format: wal.ts, docs/FORMAT.md). Fail-stop: after any failed open, write, fsync,
 * rename or unlink it is stopped for good. Every later call throws a STOPPED StorageError naming
 * the first failure, and it never writes again, so a failed or partial write is never followed by
 * good records (recovery then sees the damage as the torn tail it is), and buffered records are
 * never dropped silently: they stay buffered, unwritten, until the writer is abandoned.
 */
import path from 'node:path';
import type { HardState } from '../raft/types.js';
import { StorageError, fsError, stoppedError } from './errors.js';
import type { FileSystem } from './fs.js';
import { closeQuietly, createTemp, fsOf, fsyncDir, fsyncFd, unlinkQuietly, writeAll, type SyncOptions } from './fsutil.js';
import { DEFAULT_SEGMENT_BYTES, SEGMENT_HEADER_BYTES, WAL_FORMAT_VERSION, encodeRecord, encodeSegmentHeader, sealBatch, segmentFileName, type WalRecord } from './wal.js';

export interface SegmentState {
  name: string;
  path: string;
  seq: number;
  firstIndex: number;
  /** Format version of the segment (the writer appends only to the current one, else it starts a new segment). */
  version: number;
  size: number;
  /** Entry records in the segment. */
  entryRecords: number;
  /** Lowest and highest entry index recorded in the segment (0 when none). */
  minIndex: number;
  maxIndex: number;
}

export interface WalWriterOptions extends SyncOptions {
  segmentBytes?: number;
}

interface Pending {
  buf: Buffer;
  entryIndex: number;
  hardState: HardState | null;
}

/**
 * Appends records to the newest segment; `sync()` writes everything buffered and fsyncs once.
 * Each write to a segment ends with zero padding to a 512-byte boundary and a commit record there
 * (format version 2). Rotates to a new segment (starting with the current hard state) when a
 * segment reaches `segmentBytes`, and before appending to a segment of an older version.
 */
export class WalWriter {
  readonly segments: SegmentState[];
  private fd: number | null = null;
  private pending: Pending[] = [];
  private hardState: HardState;
  private lastIndex: number;
  private readonly segmentBytes: number;
  private readonly fs: FileSystem;
  private failed: StorageError | null = null;
  private flight: Promise<void> | null = null;

  constructor(
    readonly walDir: string,
    segments: SegmentState[],
    state: { hardState: HardState; lastIndex: number },
    private readonly opts: WalWriterOptions = {},
  ) {
    this.segments = segments;
    this.hardState = { ...state.hardState };
    this.lastIndex = state.lastIndex;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.fs = fsOf(opts);
  }

  /** The first failure, once the writer has stopped (null while it works). */
  get failure(): StorageError | null {
    return this.failed;
  }

  /** Buffer a record (written by the next `sync`). */
  add(rec: WalRecord): void {
    this.usable();
    const buf = encodeRecord(rec);
    this.pending.push({
      buf,
      entryIndex: rec.type === 'entry' ? rec.entry.index : 0,
      hardState: rec.type === 'hardState' ? { ...rec.hardState } : null,
    });
  }

  /** Drop buffered records (a simulated crash before sync, or abandoning a stopped writer). */
  discardPending(): void {
    this.pending = [];
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Write all buffered records, rotating as needed, then fsync once. The records stay buffered
   * until the fsync has returned; on any failure the writer stops (see the file comment).
   */
  sync(): void {
    this.notBusy('sync');
    this.guarded(() => this.writePending());
  }

  /**
   * `sync` with its last fsync off the event loop (FileSystem.fsyncAsync): everything buffered is
   * written now, and the promise resolves once it is durable (null: nothing was buffered, or the
   * file system has no asynchronous fsync and the records are durable already). Until then the
   * writer takes no other writing call (they throw; NodeStorage waits for `inFlight` first), but
   * `add` may buffer the next records. A failed fsync stops the writer and rejects.
   */
  syncAsync(): Promise<void> | null {
    this.usable();
    if (this.flight) throw this.busyError('sync');
    const fsyncAsync = this.fs.fsyncAsync;
    if (this.pending.length === 0) return null;
    if (!fsyncAsync || this.opts.fsync === false) {
      this.sync();
      return null;
    }
    const seg = this.guarded(() => this.writePending(true));
    const fd = this.fd;
    if (seg === null || fd === null) return null;
    const done = fsyncAsync.call(this.fs, fd).then(
      () => {
        this.flight = null;
      },
      (e: unknown) => {
        this.flight = null;
        const err = fsError(e, seg.path, 'fsync WAL segment');
        if (!this.failed) this.failed = err;
        this.releaseFd();
        throw err;
      },
    );
    this.flight = done;
    return done;
  }

  /** The asynchronous fsync of the last `syncAsync`, while it runs (null otherwise). */
  get inFlight(): Promise<void> | null {
    return this.flight;
  }

  /** Force a new segment at the next write (e.g. so that a covered active segment can be dropped). */
  forceRotate(): void {
    this.notBusy('forceRotate');
    this.guarded(() => {
      this.writePending();
      this.closeCurrent();
      this.rotate(this.lastIndex + 1);
    });
  }

  /**
   * Delete the oldest segments whose entries all lie at or below `upToIndex` (never the segment
   * being written). Returns the deleted segments.
   */
  deleteCovered(upToIndex: number): SegmentState[] {
    this.notBusy('deleteCovered');
    return this.guarded(() => {
      this.writePending();
      const removed: SegmentState[] = [];
      while (this.segments.length > 1) {
        const s = this.segments[0]!;
        if (s.maxIndex > upToIndex) break;
        try {
          this.fs.unlink(s.path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, s.path, 'delete WAL segment');
        }
        removed.push(s);
        this.segments.shift();
      }
      if (removed.length > 0) fsyncDir(this.walDir, this.opts);
      return removed;
    });
  }

  /** Sync what is buffered and close the segment. A stopped writer releases its file and throws. */
  close(): void {
    this.notBusy('close');
    this.guarded(() => {
      this.writePending();
      this.closeCurrent();
    });
  }

  /** Release the segment without writing anything more (buffered records are dropped). Never throws. */
  abandon(): void {
    this.pending = [];
    this.releaseFd();
  }

  get currentHardState(): HardState {
    return this.hardState;
  }

  private usable(): void {
    if (this.failed) throw stoppedError(this.failed);
  }

  private busyError(call: string): StorageError {
    return new StorageError('INVALID', this.walDir, `WAL ${call} while an fsync of it is in flight (a caller must wait for it first)`);
  }

  /** A writing call while an asynchronous fsync runs is refused before anything is written (a caller's bug). */
  private notBusy(call: string): void {
    this.usable();
    if (this.flight) throw this.busyError(call);
  }

  /** Run a step that writes; its first failure stops the writer for good. */
  private guarded<T>(step: () => T): T {
    this.usable();
    try {
      return step();
    } catch (e) {
      this.failed = e instanceof StorageError ? e : fsError(e, this.walDir, 'write WAL');
      this.releaseFd();
      throw e;
    }
  }

  private releaseFd(): void {
    if (this.fd !== null) {
      closeQuietly(this.fs, this.fd);
      this.fd = null;
    }
  }

  private current(): SegmentState | null {
    return this.segments.length > 0 ? this.segments[this.segments.length - 1]! : null;
  }

  /**
   * Write the buffered records. `deferLastFsync`: the last run is written but not fsynced (the
   * caller fsyncs the open segment asynchronously); returns that run's segment.
   */
  private writePending(deferLastFsync = false): SegmentState | null {
    if (this.pending.length === 0) return null;
    const batch = this.pending;
    let cur = this.current();
    let chunks: Buffer[] = [];
    let run: Pending[] = [];
    let runSize = 0;
    for (const p of batch) {
      const full = cur !== null && cur.size + runSize >= this.segmentBytes && (run.length > 0 || cur.entryRecords > 0);
      if (!cur || cur.version !== WAL_FORMAT_VERSION || full) {
        if (cur && run.length > 0) this.writeRun(cur, chunks, run);
        chunks = [];
        run = [];
        runSize = 0;
        if (cur) this.closeCurrent();
        cur = this.rotate(p.entryIndex > 0 ? p.entryIndex : this.lastIndex + 1);
      }
      chunks.push(p.buf);
      run.push(p);
      runSize += p.buf.length;
    }
    if (cur && run.length > 0) this.writeRun(cur, chunks, run, !deferLastFsync);
    // Everything was written and fsynced (or, deferred, written: the caller's fsync is the rest of
    // this call, and a failure of it stops the writer): only now do the records leave the buffer.
    this.pending = [];
    return cur;
  }

  /**
   * Write one run of records to `seg`, sealed (padding and commit record), in one write, and fsync
   * it; the segment's figures change only after.
   */
  private writeRun(seg: SegmentState, chunks: Buffer[], run: Pending[], fsync = true): void {
    if (this.fd === null) {
      try {
        this.fd = this.fs.open(seg.path, 'a');
      } catch (e) {
        throw fsError(e, seg.path, 'open WAL segment');
      }
    }
    const sealed = [...chunks, ...sealBatch(seg.size, chunks)];
    const n = writeAll(this.fs, this.fd, [sealed.length === 1 ? sealed[0]! : Buffer.concat(sealed)], seg.path);
    if (fsync && this.opts.fsync !== false) fsyncFd(this.fs, this.fd, seg.path, 'fsync WAL segment');
    seg.size += n;
    for (const p of run) {
      if (p.entryIndex > 0) {
        this.lastIndex = p.entryIndex;
        seg.entryRecords += 1;
        if (seg.minIndex === 0 || p.entryIndex < seg.minIndex) seg.minIndex = p.entryIndex;
        if (p.entryIndex > seg.maxIndex) seg.maxIndex = p.entryIndex;
      }
      if (p.hardState) this.hardState = p.hardState;
    }
  }

  /** Close the segment being written (every run was fsynced when it was written). */
  private closeCurrent(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      this.fs.close(fd);
    } catch (e) {
      throw fsError(e, this.current()!.path, 'close WAL segment');
    }
  }

  /** Start a new segment holding the header and the current hard state (created atomically). */
  private rotate(firstIndex: number): SegmentState {
    const prev = this.current();
    const seq = prev ? prev.seq + 1 : 1;
    const name = segmentFileName(seq, firstIndex);
    const file = path.join(this.walDir, name);
    const head0 = [encodeSegmentHeader(seq, firstIndex), encodeRecord({ type: 'hardState', hardState: this.hardState })];
    const head = [...head0, ...sealBatch(SEGMENT_HEADER_BYTES, head0.slice(1))];
    const { tmp, fd } = createTemp(file, this.fs, 'create WAL segment');
    try {
      try {
        writeAll(this.fs, fd, head, tmp);
        if (this.opts.fsync !== false) fsyncFd(this.fs, fd, tmp, 'fsync new WAL segment');
      } finally {
        closeQuietly(this.fs, fd);
      }
      try {
        this.fs.rename(tmp, file);
      } catch (e) {
        throw fsError(e, file, 'rename new WAL segment into place');
      }
    } catch (e) {
      // Leave no temporary behind (recovery would remove it, but a stopped node may not restart soon).
      unlinkQuietly(this.fs, tmp);
      throw e;
    }
    fsyncDir(this.walDir, this.opts);
    const seg: SegmentState = {
      name,
      path: file,
      seq,
      firstIndex,
      version: WAL_FORMAT_VERSION,
      size: head.reduce((n, b) => n + b.length, 0),
      entryRecords: 0,
      minIndex: 0,
      maxIndex: 0,
    };
    this.segments.push(seg);
    return seg;
  }
}

/**
 * Size of a new segment as the writer makes it (`forceRotate`, then `records` in one sync):
 * header and hard state, sealed, then the records, sealed. Lets a tool say what it will write.
 */
export function newSegmentBytes(hardState: HardState, records: readonly WalRecord[]): number {
  const sum = (bs: readonly Buffer[]): number => bs.reduce((n, b) => n + b.length, 0);
  const head = [encodeRecord({ type: 'hardState', hardState })];
  const size = SEGMENT_HEADER_BYTES + sum(head) + sum(sealBatch(SEGMENT_HEADER_BYTES, head));
  if (records.length === 0) return size;
  const body = records.map(encodeRecord);
  return size + sum(body) + sum(sealBatch(size, body));
}
