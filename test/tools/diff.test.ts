import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { diffStates } from '../../src/tools/diff.js';
import type { ToolState } from '../../src/tools/state.js';
import type { Json } from '../../src/raft/types.js';

function st(pairs: Array<[Json, Json]>, over: Partial<ToolState['header']> = {}, kind: ToolState['kind'] = 'snapshot'): ToolState {
  return { source: 'x', kind, header: { index: 5, term: 2, config: ['n1', 'n2'], ...over }, pairs, dedup: null };
}

describe('diffStates', () => {
  it('equal states', () => {
    const r = diffStates(st([[1, 2], ['a', { x: 1, y: 2 }]]), st([['a', { y: 2, x: 1 }], [1, 2]]));
    expect(r.equal).toBe(true);
    expect(r.counts).toEqual({ added: 0, removed: 0, changed: 0, unchanged: 2 });
    expect(r.header).toEqual([]);
  });

  it('keeps integer and string keys distinct', () => {
    const r = diffStates(st([[1, 'v']]), st([['1', 'v']]), { keys: true });
    expect(r.equal).toBe(false);
    expect(r.counts).toMatchObject({ added: 1, removed: 1, changed: 0 });
    expect(r.keys!.added).toEqual([{ key: '1', value: 'v' }]);
    expect(r.keys!.removed).toEqual([{ key: 1, value: 'v' }]);
  });

  it('added, removed, changed sorted by key', () => {
    const a = st([[10, 1], [2, 1], [3, 1], ['z', 0]]);
    const b = st([[2, 9], [3, 1], [11, 0], [1, 0], [null, 1]]);
    const r = diffStates(a, b, { keys: true });
    expect(r.keys!.added.map((k) => k.key)).toEqual([1, 11, null]);
    expect(r.keys!.removed.map((k) => k.key)).toEqual([10, 'z']);
    expect(r.keys!.changed).toEqual([{ key: 2, a: 1, b: 9 }]);
    expect(r.counts).toEqual({ added: 3, removed: 2, changed: 1, unchanged: 1 });
  });

  it('index/term/config differences make states differ; file fields do not', () => {
    expect(diffStates(st([]), st([], { index: 6 })).equal).toBe(false);
    expect(diffStates(st([]), st([], { config: ['n2', 'n1'] })).equal).toBe(true);
    const r = diffStates(st([], { createdAt: 'a', rawSize: 1 }), st([], { createdAt: 'b', rawSize: 1 }));
    expect(r.equal).toBe(true);
    expect(r.header).toEqual([{ field: 'createdAt', a: 'a', b: 'b', state: false }]);
    // Between a file and a directory only state fields are compared.
    expect(diffStates(st([], { createdAt: 'a' }), st([], {}, 'dir')).header).toEqual([]);
  });

  it('client session tables count, compared as the node loads them (a directory rebuilds its own by the replay)', () => {
    const t = (id: number) => ({ forwards: [{ origin: 'n2/f', last: 5, low: 0, ids: [id] }] }) as Json;
    const a = { ...st([]), dedup: t(1) };
    const b = { ...st([]), dedup: t(2) };
    expect(diffStates(a, b).equal).toBe(false);
    expect(diffStates(a, a).dedup).toEqual({ equal: true, counts: true });
    expect(diffStates({ ...a, kind: 'dir' }, b).equal).toBe(false);
    // A form the node cannot read is no table: two such tables do not make states differ.
    expect(diffStates({ ...st([]), dedup: { c1: 1 } as Json }, { ...st([]), dedup: { c1: 2 } as Json }).equal).toBe(true);
  });

  it('property: diff(a, b) counts agree with diff(b, a) and equal iff same map', () => {
    const key = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom('0', '1', 'a', 'b'));
    const kv = fc.uniqueArray(fc.tuple(key, fc.integer({ min: 0, max: 3 })), { selector: (p) => JSON.stringify(p[0]) });
    fc.assert(
      fc.property(kv, kv, (pa, pb) => {
        const ab = diffStates(st(pa as Array<[Json, Json]>), st(pb as Array<[Json, Json]>));
        const ba = diffStates(st(pb as Array<[Json, Json]>), st(pa as Array<[Json, Json]>));
        expect(ab.counts.added).toBe(ba.counts.removed);
        expect(ab.counts.changed).toBe(ba.counts.changed);
        const same =
          pa.length === pb.length &&
          pa.every(([k, v]) => pb.some(([k2, v2]) => k2 === k && v2 === v));
        expect(ab.equal).toBe(same);
      }),
    );
  });
});
