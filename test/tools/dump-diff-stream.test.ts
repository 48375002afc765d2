// `diff` streamed (src/tools/diff-stream.ts) gives exactly what diffStates gives on the states
// built in memory (src/tools/diff.ts), for every pair of fixture snapshots and directories.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffStates } from '../../src/tools/diff.js';
import { sharedBaseDiff, streamDiff } from '../../src/tools/diff-stream.js';
import type { Json } from '../../src/raft/types.js';
import { DiskStorage, encodeSnapshot } from '../../src/storage/index.js';
import { loadState } from '../../src/tools/load.js';
import { ROOT } from '../commands/helpers.js';
import { tmpDir } from '../storage/helpers.js';

const SIDES = [
  'fixtures/snapshots/good.snap',
  'fixtures/snapshots/diff-a.snap',
  'fixtures/snapshots/diff-b.snap',
  'fixtures/healthy',
  'fixtures/leftovers',
  'fixtures/torn-tail',
  'fixtures/broken-snapshot',
  'fixtures/healthy/snap/0000000000000003-00000000000000fa.snap',
].map((p) => path.join(ROOT, p));

describe('streamed diff = diff of the states in memory', () => {
  for (const a of SIDES) {
    it(`${path.relative(ROOT, a)} against every side, with and without --keys`, async () => {
      const la = await loadState(a);
      for (const b of SIDES) {
        const lb = await loadState(b);
        for (const keys of [false, true]) {
          const want = diffStates(la.state, lb.state, { keys });
          const got = streamDiff(a, b, { keys }).result;
          expect(got, `${path.relative(ROOT, a)} vs ${path.relative(ROOT, b)} keys=${keys}`).toEqual(want);
        }
      }
    });
  }
});

describe('two directories holding the same snapshot file: read once, only the logged keys compared', () => {
  /** A data directory with a snapshot of `base` at index 10 and the committed log `log` after it (and one uncommitted write). */
  function dirWith(base: Array<[Json, Json]>, log: Json[]): string {
    const dir = tmpDir();
    const s = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
    s.append(Array.from({ length: 10 }, (_, i) => ({ index: i + 1, term: 1, data: null })));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 10 });
    s.sync();
    s.saveSnapshot({ index: 10, term: 1, config: ['n1'] }, encodeSnapshot({ index: 10, term: 1, config: ['n1'] }, { kv: base }, { createdAt: 0 })); // the same bytes for the same pairs
    const entries = log.map((data, i) => ({ index: 11 + i, term: 1, data }));
    s.append([...entries, { index: 11 + log.length, term: 1, data: { op: 'write', key: 'uncommitted', value: 1 } }]);
    s.setHardState({ term: 1, votedFor: 'n1', commit: 10 + log.length });
    s.sync();
    s.close();
    return dir;
  }
  const base: Array<[Json, Json]> = Array.from({ length: 20_000 }, (_, i) => [i, i % 7]);
  base.push(['s', 'x'], ['1', 'the string one'], [[1, 2], { a: 1 }], [null, 0]);
  const shared = [
    { op: 'write', key: 5, value: 'five' },
    { op: 'cas', key: 's', from: 'x', to: 'y' },
  ];

  it('gives what the states in memory give: changed, added, removed-by-neither, keys of every kind, with and without --keys', async () => {
    const a = dirWith(base, [...shared, { op: 'write', key: 7, value: 'a-only' }, { op: 'write', key: 'created-a', value: [1] }, { op: 'read', key: 'missing' }]);
    const b = dirWith(base, [
      ...shared,
      { op: 'write', key: 5, value: 'six' }, // changed after a common write
      { op: 'write', key: 8, value: 8 % 7 }, // written to the value it had: unchanged
      { op: 'write', key: 'created-b', value: { b: true } },
      { op: 'cas', key: '1', from: 'the string one', to: 2 }, // "1", not 1
      { op: 'write', key: [1, 2], value: { a: 2 } },
      { op: 'cas', key: 'missing', from: 1, to: 2 }, // fails: nothing created
    ]);
    // Not copies: the snapshot files are the same bytes, the logs differ.
    expect(sharedBaseDiff(a, b, {})).not.toBeNull();
    const [la, lb] = [await loadState(a), await loadState(b)];
    for (const keys of [false, true]) {
      for (const [x, y, lx, ly] of [[a, b, la, lb], [b, a, lb, la], [a, a, la, la]] as const) {
        expect(streamDiff(x, y, { keys }).result).toEqual(diffStates(lx.state, ly.state, { keys }));
      }
    }
    const r = streamDiff(a, b, { keys: true }).result;
    expect(r.counts).toEqual({ added: 1, removed: 1, changed: 4, unchanged: base.length - 4 });
    expect(r.keys!.changed.map((c) => c.key)).toEqual(diffStates(la.state, lb.state, { keys: true }).keys!.changed.map((c) => c.key));
  });

  it('takes the general path when the snapshots differ by one byte, or one side is a file', () => {
    const a = dirWith(base, shared);
    const other = [...base];
    other[3] = [3, 4];
    const b = dirWith(other, shared);
    expect(sharedBaseDiff(a, b, {})).toBeNull();
    expect(streamDiff(a, b, {}).result.counts).toEqual({ added: 0, removed: 0, changed: 1, unchanged: base.length - 1 });
    expect(sharedBaseDiff(a, path.join(ROOT, 'fixtures/snapshots/good.snap'), {})).toBeNull();
  });
});
