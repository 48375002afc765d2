// RaftLog.receive: a follower's AppendEntries receiver rules (Figure 2) on the in-memory log.
import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../src/raft/log.js';
import type { Entry } from '../../src/raft/types.js';

const e = (index: number, term: number): Entry => ({ index, term, data: index });
/** A log holding entries 1..terms.length with those terms. */
const logOf = (terms: number[]): RaftLog => new RaftLog(0, 0, terms.map((t, i) => e(i + 1, t)));
const terms = (l: RaftLog): number[] => l.slice(1, l.lastIndex).map((x) => x.term);

describe('RaftLog.receive', () => {
  it('appends after a matching entry and replaces a conflicting suffix, keeping what matches', () => {
    const l = logOf([1, 1, 2, 2]);
    expect(l.receive(2, 1, [e(3, 2), e(4, 3), e(5, 3)], 0)).toEqual({ match: 5 });
    expect(terms(l)).toEqual([1, 1, 2, 3, 3]);
    // An older, shorter append that matches changes nothing (no truncation of later entries).
    expect(l.receive(1, 1, [e(2, 1)], 0)).toEqual({ match: 2 });
    expect(terms(l)).toEqual([1, 1, 2, 3, 3]);
  });

  it('refuses with lastIndex + 1 when the log is too short, and with the start of the conflicting run', () => {
    const l = logOf([1, 2, 2, 2]);
    expect(l.receive(6, 2, [], 0)).toEqual({ rejectHint: 5 });
    expect(l.receive(4, 3, [], 0)).toEqual({ rejectHint: 2 });
    // Never at or below the commit index.
    expect(l.receive(4, 3, [], 2)).toEqual({ rejectHint: 3 });
    expect(terms(l)).toEqual([1, 2, 2, 2]);
  });

  it('skips what lies at or below the commit index, even inside the compacted prefix', () => {
    const l = new RaftLog(10, 4, [e(11, 4), e(12, 5)]);
    expect(l.receive(3, 1, [e(4, 1)], 12)).toEqual({ match: 12 });
    expect(l.receive(9, 4, [e(10, 4), e(11, 4), e(12, 5), e(13, 5)], 12)).toEqual({ match: 13 });
    expect(l.lastIndex).toBe(13);
  });

  it('never replaces an entry at or below the commit index', () => {
    // An append that disagrees about committed entries cannot come from a legitimate leader; the
    // committed part is skipped, not truncated, and only what follows the commit index is taken.
    const l = logOf([1, 1, 2]);
    expect(l.receive(0, 0, [e(1, 9), e(2, 9), e(3, 9), e(4, 9)], 2)).toEqual({ match: 4 });
    expect(terms(l)).toEqual([1, 1, 9, 9]);
    const m = logOf([1, 1, 2]);
    expect(m.receive(1, 1, [e(2, 7), e(3, 2), e(4, 2)], 2)).toEqual({ match: 4 });
    expect(terms(m)).toEqual([1, 1, 2, 2]);
  });
});
