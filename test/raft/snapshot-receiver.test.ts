// SnapshotReceiver on its own (src/raft/snapshot.ts): which chunk of a leader's snapshot goes to
// the driver and what the leader is told, without a core around it.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { SnapshotReceiver } from '../../src/raft/snapshot.js';
import type { InstallSnapshot, SnapshotMeta } from '../../src/raft/types.js';

const meta: SnapshotMeta = { index: 40, term: 3, config: ['n1', 'n2', 'n3'] };
const chunk = (offset: number, bytes: number, over: Partial<InstallSnapshot> = {}): InstallSnapshot => ({
  type: 'raft_install_snapshot', from: 'n1', to: 'n2', term: 3, meta, size: 10, offset,
  data: Buffer.alloc(bytes, 7).toString('base64'), done: offset + bytes >= 10, ...over,
});

describe('SnapshotReceiver', () => {
  it('hands out the chunk that continues what is held, one at a time, and remembers the bytes stored', () => {
    const r = new SnapshotReceiver();
    expect(r.offer(chunk(0, 4), 3)).toBeNull();
    expect(r.waiting).toBe(true);
    // A resend while the first is with the driver is dropped: no answer now.
    expect(r.offer(chunk(0, 4), 3)).toBeNull();
    const c = r.take()!;
    expect(c).toMatchObject({ offset: 0, size: 10, last: false });
    expect(c.data.length).toBe(4);
    expect(r.take()).toBeNull();
    expect(r.waiting).toBe(false);
    expect(r.stored(meta, 4, false)).toMatchObject({ from: 'n1', term: 3 });
    // The same leader restarting at 0 is told to resume at 4; the chunk at 4 is taken.
    expect(r.offer(chunk(0, 4), 3)).toBe(4);
    expect(r.offer(chunk(4, 6), 3)).toBeNull();
    expect(r.take()).toMatchObject({ offset: 4, last: true });
    expect(r.stored(meta, 10, true).chunk.last).toBe(true);
    // Installed: nothing is held any more, a new transfer starts at 0.
    expect(r.offer(chunk(4, 6), 3)).toBe(0);
  });

  it('another leader, another snapshot or another size starts from 0; a chunk past the size is refused', () => {
    const r = new SnapshotReceiver();
    r.offer(chunk(0, 4), 3);
    r.take();
    r.stored(meta, 4, false);
    expect(r.offer(chunk(4, 6, { from: 'n3' }), 4)).toBe(0);
    expect(r.offer(chunk(4, 6, { meta: { ...meta, index: 41 } }), 3)).toBe(0);
    expect(r.offer(chunk(4, 6, { size: 11 }), 3)).toBe(0);
    expect(r.offer(chunk(4, 7), 3)).toBe(4);
    expect(r.waiting).toBe(false);
  });

  it('refuses impossible reports from the driver', () => {
    const r = new SnapshotReceiver();
    expect(() => r.stored(meta, 0, false)).toThrow(/no chunk of that snapshot was handed out/);
    r.offer(chunk(0, 4), 3);
    expect(() => r.stored(meta, 4, false)).toThrow(/no chunk/); // not handed out yet
    r.take();
    expect(() => r.stored({ ...meta, term: 2 }, 4, false)).toThrow(/no chunk/);
    expect(() => r.stored(meta, 11, false)).toThrow(RangeError);
    expect(() => r.stored(meta, 4, true)).toThrow(/not the last/);
    // A failed verification (0 held) forgets the transfer.
    r.stored(meta, 0, false);
    expect(r.offer(chunk(4, 6), 3)).toBe(0);
  });
});
