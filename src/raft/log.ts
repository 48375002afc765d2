import type { Entry } from './types.js';

/**
 * The in-memory Raft log with a compacted prefix.
 *
 * Entries `offset+1 .. lastIndex` are held; everything at or below `offset` was compacted away, but
 * the term of the entry at `offset` is remembered so that `termAt(offset)` stays valid (it is the
 * prevLogTerm of the first held entry). Nothing here assumes that entry i implies entries 1..i-1.
 *
 * The log also tracks which entries are not yet on stable storage (`unstableFrom`): those come out
 * of the next Ready. `handOut()` remembers how far a Ready reached so that `stableTo()` (called from
 * `advance()`) marks only those, and a truncation or snapshot in between pulls the mark back.
 */
export class RaftLog {
  private offsetIndex: number;
  private offsetTerm: number;
  private ents: Entry[];
  /** First index not yet handed to the driver for persistence. */
  private unstable: number;
  /** Last index handed out by the pending Ready (-1 when none is pending). */
  private handedTo = -1;

  constructor(offsetIndex: number, offsetTerm: number, entries: readonly Entry[]) {
    this.offsetIndex = offsetIndex;
    this.offsetTerm = offsetTerm;
    entries.forEach((e, i) => {
      if (e.index !== offsetIndex + 1 + i) {
        throw new RangeError(`log entries must be contiguous after ${offsetIndex}: got index ${e.index} at position ${i}`);
      }
    });
    this.ents = entries.slice();
    this.unstable = this.lastIndex + 1;
  }

  /** Index of the last compacted entry (0 when nothing was compacted). */
  get offset(): number {
    return this.offsetIndex;
  }
  get firstIndex(): number {
    return this.offsetIndex + 1;
  }
  get lastIndex(): number {
    return this.offsetIndex + this.ents.length;
  }
  get lastTerm(): number {
    return this.termAt(this.lastIndex)!;
  }
  get unstableFrom(): number {
    return this.unstable;
  }

  /** Term of entry `index`; defined for offset <= index <= lastIndex. */
  termAt(index: number): number | undefined {
    if (index === this.offsetIndex) return this.offsetTerm;
    if (index < this.offsetIndex || index > this.lastIndex) return undefined;
    return this.ents[index - this.offsetIndex - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.offsetIndex || index > this.lastIndex) return undefined;
    return this.ents[index - this.offsetIndex - 1];
  }

  /** Held entries in [from, to], clamped to what the log holds. */
  slice(from: number, to: number): Entry[] {
    const lo = Math.max(from, this.firstIndex);
    const hi = Math.min(to, this.lastIndex);
    if (lo > hi) return [];
    return this.ents.slice(lo - this.offsetIndex - 1, hi - this.offsetIndex);
  }

  /**
   * Append `entries` (contiguous), replacing the held suffix from `entries[0].index` on. The first
   * index must be in (offset, lastIndex + 1].
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.offsetIndex || first > this.lastIndex + 1) {
      throw new RangeError(`append at ${first} outside (${this.offsetIndex}, ${this.lastIndex + 1}]`);
    }
    if (first <= this.lastIndex) this.truncateFrom(first);
    for (const e of entries) this.ents.push(e);
  }

  /**
   * A follower's AppendEntries receiver rules 2-4 (Figure 2) for the leader's `entries` after
   * (`prev`, `prevTerm`). Everything through `commit` matches the leader's log already, so the part
   * of the append at or below it is skipped (this covers a `prev` inside the compacted prefix,
   * whose term may be unknown). Returns the last index the append covers (the follower's match
   * index), having appended what was new; or a refusal with `rejectHint`, where the leader should
   * look next: lastIndex + 1 when the log is too short, else the first index of the run of the
   * conflicting term (never at or below `commit`). Nothing at or below `commit` is ever replaced:
   * that part of the append is skipped before any comparison.
   */
  receive(prev: number, prevTerm: number, entries: readonly Entry[], commit: number): { match: number } | { rejectHint: number } {
    let ents = entries;
    if (prev < commit) {
      const skip = commit - prev;
      if (ents.length <= skip) return { match: commit };
      ents = ents.slice(skip);
      prev = commit;
      prevTerm = this.termAt(prev)!;
    }
    const ourTerm = this.termAt(prev);
    if (ourTerm === undefined) return { rejectHint: this.lastIndex + 1 };
    if (ourTerm !== prevTerm) {
      let hint = prev;
      while (hint - 1 > commit && this.termAt(hint - 1) === ourTerm) hint--;
      return { rejectHint: hint };
    }
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (this.termAt(e.index) === e.term) continue;
      this.append(ents.slice(i));
      break;
    }
    return { match: prev + ents.length };
  }

  /** Drop held entries from `index` on (index > offset). */
  private truncateFrom(index: number): void {
    this.ents.length = index - this.offsetIndex - 1;
    this.pullBackUnstable(index);
  }

  private pullBackUnstable(index: number): void {
    if (index < this.unstable) this.unstable = index;
    if (this.handedTo >= index) this.handedTo = index - 1;
  }

  /** Drop entries up to and including `index` (offset <= index <= lastIndex); the suffix stays. */
  compactTo(index: number): void {
    if (index <= this.offsetIndex) return;
    if (index > this.lastIndex) throw new RangeError(`compact to ${index} beyond last index ${this.lastIndex}`);
    const term = this.termAt(index)!;
    this.ents = this.ents.slice(index - this.offsetIndex);
    this.offsetIndex = index;
    this.offsetTerm = term;
    if (this.unstable <= index) this.unstable = index + 1;
  }

  /** Discard the whole log; it now starts after (index, term). */
  reset(index: number, term: number): void {
    this.ents = [];
    this.offsetIndex = index;
    this.offsetTerm = term;
    this.unstable = index + 1;
    if (this.handedTo > index) this.handedTo = index;
  }

  /** Mark everything from `index` on as to be persisted again (after a snapshot replaced the stored log). */
  markUnstableFrom(index: number): void {
    this.pullBackUnstable(Math.max(index, this.firstIndex));
  }

  /** Entries to persist in the next Ready; remembers how far they reach for `stableTo`. */
  handOut(): Entry[] {
    const out = this.slice(this.unstable, this.lastIndex);
    this.handedTo = this.lastIndex;
    return out;
  }

  /** The driver persisted what the last `handOut()` returned (still valid parts of it). */
  stableTo(): void {
    if (this.handedTo >= this.unstable) this.unstable = this.handedTo + 1;
    this.handedTo = -1;
  }
}
