/**
 * Replay of WAL records into a log (shared by recovery and the offline tools' log listings, so
 * that both follow the same rules):
 *  - an entry at index last+1 is appended; an entry at or below the last index replaces the log
 *    from that index on (a conflicting suffix was truncated); an entry beyond last+1 is a gap: the
 *    log starts again at that entry (segments deleted by compaction may be missing in any order,
 *    when a crash came before the directory fsync), and the gap is remembered;
 *  - the first entry seen, or the first after a marker emptied the log, starts the log (older
 *    segments may have been deleted); `entriesAfter` checks the log reaches the chosen snapshot,
 *    so that a gap below it is harmless and a gap above it is LOG_GAP;
 *  - a snapshot marker (index S, term T) keeps the log when it holds entry S with term T, and
 *    otherwise discards it (Raft Figure 13 rules 6-7): the log then continues from S+1;
 *  - the hard state is the last one recorded.
 */
import type { Entry, HardState } from '../raft/types.js';
import { StorageError } from './errors.js';
import { EMPTY_HARD_STATE, type WalRecord } from './wal.js';

export class LogReplay {
  log: Entry[] = [];
  /** Index just before log[0]. */
  base = 0;
  hardState: HardState = { ...EMPTY_HARD_STATE };
  /** Where the last hard state was read (null: none yet). */
  hardStateAt: { file: string; offset?: number } | null = null;
  markers: Array<{ index: number; term: number; file: string }> = [];
  /** The last gap: entries `from`..`to` missing before the entry at `file`/`offset`. */
  gap: { from: number; to: number; file: string; offset?: number } | null = null;

  get lastIndex(): number {
    return this.base + this.log.length;
  }

  /** Apply one record; `where` names file and offset for errors. */
  apply(rec: WalRecord, where: { file: string; offset?: number }): void {
    if (rec.type === 'hardState') {
      this.hardState = rec.hardState;
      this.hardStateAt = { ...where };
      return;
    }
    if (rec.type === 'snapshot') {
      this.markers.push({ index: rec.index, term: rec.term, file: rec.file });
      const last = this.lastIndex;
      if (rec.index > this.base && rec.index <= last) {
        if (this.log[rec.index - this.base - 1]!.term !== rec.term) this.reset(rec.index);
      } else if (rec.index > last) this.reset(rec.index);
      return;
    }
    const e = rec.entry;
    const last = this.lastIndex;
    if (this.log.length === 0) {
      // An empty log (at the start, or emptied by a snapshot marker) starts at whatever entry comes
      // next: the segments before it may have been deleted because newer snapshots cover them, so
      // a marker at S followed by S+2 is not a gap in itself. Whether the entries reach back to
      // the snapshot that recovery picks is checked once, in `entriesAfter`.
      this.base = e.index - 1;
      this.log.push(e);
    } else if (e.index === last + 1) {
      this.log.push(e);
    } else if (e.index <= last) {
      if (e.index <= this.base) {
        this.base = e.index - 1;
        this.log = [e];
      } else {
        this.log.length = e.index - this.base - 1;
        this.log.push(e);
      }
    } else {
      // A gap: harmless if a snapshot covers it, which `entriesAfter` checks.
      this.gap = { from: last + 1, to: e.index - 1, file: where.file, ...(where.offset !== undefined ? { offset: where.offset } : {}) };
      this.base = e.index - 1;
      this.log = [e];
    }
  }

  private reset(s: number): void {
    this.log = [];
    this.base = s;
  }

  /**
   * The entries after a snapshot at (index, term) (or after index 0 without a snapshot). Throws
   * LOG_GAP when entries between the snapshot and the log are missing.
   */
  entriesAfter(snap: { index: number; term: number } | null, dir: string): Entry[] {
    const si = snap ? snap.index : 0;
    const last = this.lastIndex;
    if (si > this.base && si <= last) {
      // Figure 13 rule 6/7: keep the suffix only if the log agrees with the snapshot at its index.
      return this.log[si - this.base - 1]!.term === snap!.term ? this.log.slice(si - this.base) : [];
    }
    if (si >= last) return [];
    if (si === this.base) return this.log.slice();
    const g = this.gap;
    if (g && g.to === this.base) {
      throw new StorageError(
        'LOG_GAP',
        g.file,
        `log entries ${g.from}..${g.to} are missing: the WAL goes from entry ${g.from - 1} to entry ${g.to + 1} here, above the ${snap ? `snapshot at index ${si}` : 'start of the log (no usable snapshot)'}`,
        g.offset,
      );
    }
    throw new StorageError(
      'LOG_GAP',
      dir,
      `recovery needs log entries from index ${si + 1} but the WAL starts at index ${this.base + 1}${snap ? '' : ' and there is no usable snapshot'} (the snapshot covering them is missing or broken)`,
    );
  }

  /** Hard state with commit raised to at least the snapshot index. */
  hardStateWith(snap: { index: number } | null): HardState {
    const hs = { ...this.hardState };
    if (snap && hs.commit < snap.index) hs.commit = snap.index;
    return hs;
  }
}
