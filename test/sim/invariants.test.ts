/**
 * The invariant checker itself: leader completeness is about the term an entry was committed in,
 * not the entry's own term (found by scenario random seed 782 once clock skew was in the nemesis:
 * a false leader-completeness failure).
 */
import { describe, expect, it } from 'vitest';
import { InvariantViolation, Invariants } from '../../src/sim/invariants.js';
import type { SimNode } from '../../src/sim/node.js';
import type { Entry } from '../../src/raft/types.js';

/** A node as far as the checker looks at it: role, term and the terms of its log. */
function node(id: string, role: 'leader' | 'follower', term: number, log: number[]): SimNode {
  const status = () => ({ id, role, term, leader: null, commit: 0, applied: 0, firstIndex: 1, lastIndex: log.length, snapshot: null });
  return { id, up: true, core: { status, termAt: (i: number) => log[i - 1] } } as unknown as SimNode;
}

const entry = (index: number, term: number): Entry => ({ index, term, data: { op: 'write', key: 1, value: index } });

describe('leader completeness as the simulator checks it', () => {
  it('a stale leader of term 2 need not hold an entry of term 1 that the leader of term 3 committed', () => {
    // n1 led term 2 and appended its own entry at 3, then was cut off; n3 won term 3 with the
    // term-1 entry at 3 and committed it. n1, still "leader" in its own view, holds term 2 there.
    const n1 = node('n1', 'leader', 2, [1, 1, 2]);
    const n3 = node('n3', 'leader', 3, [1, 1, 1, 3]);
    const inv = new Invariants(() => [n1, n3]);
    expect(() => {
      inv.onApplied(n3, entry(1, 1));
      inv.onApplied(n3, entry(2, 1));
      inv.onApplied(n3, entry(3, 1));
    }).not.toThrow();
    expect(inv.committed.get(3)).toMatchObject({ term: 1, by: 3 });
  });

  it('a leader of a later term than the commit that lacks the entry is still caught', () => {
    const n3 = node('n3', 'follower', 3, [1, 1, 1]);
    const n4 = node('n4', 'leader', 4, [1, 1, 2]);
    const inv = new Invariants(() => [n3, n4]);
    inv.onApplied(n3, entry(1, 1));
    inv.onApplied(n3, entry(2, 1));
    let err: unknown;
    try {
      inv.onApplied(n3, entry(3, 1));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvariantViolation);
    expect((err as InvariantViolation).invariant).toBe('leader-completeness');
    expect((err as Error).message).toMatch(/entry 3 \(term 1\) committed by term 3 at the latest, but n4, leader of term 4, holds term 2 there/);
  });
});
