import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KvStore, asKvCommand, canonicalJson, jsonEqual } from '../../src/kv/index.js';
import type { Json } from '../../src/raft/types.js';

describe('KvStore', () => {
  it('reads a never-written key as null', () => {
    const s = new KvStore();
    expect(s.apply({ op: 'read', key: 0 })).toEqual({ ok: true, value: null });
  });

  it('keeps integer and string keys apart, and indexes structured keys by value', () => {
    const s = new KvStore();
    s.apply({ op: 'write', key: 1, value: 'int' });
    s.apply({ op: 'write', key: '1', value: 'str' });
    s.apply({ op: 'write', key: { b: 1, a: [1, 2] }, value: 'obj' });
    s.apply({ op: 'write', key: null, value: 'null' });
    expect(s.get(1)).toBe('int');
    expect(s.get('1')).toBe('str');
    expect(s.get({ a: [1, 2], b: 1 })).toBe('obj');
    expect(s.get(null)).toBe('null');
    expect(s.get(true)).toBeUndefined();
    expect(s.size).toBe(4);
  });

  it('answers cas with 20 on a missing key and 22 on a mismatch, and changes nothing then', () => {
    const s = new KvStore();
    const missing = s.apply({ op: 'cas', key: 'k', from: 1, to: 2 });
    expect(missing).toMatchObject({ ok: false, code: 20 });
    s.apply({ op: 'write', key: 'k', value: 3 });
    expect(s.apply({ op: 'cas', key: 'k', from: 1, to: 2 })).toMatchObject({ ok: false, code: 22 });
    expect(s.get('k')).toBe(3);
    expect(s.apply({ op: 'cas', key: 'k', from: 3, to: 4 })).toEqual({ ok: true });
    expect(s.get('k')).toBe(4);
    expect(s.apply({ op: 'cas', key: 'new', from: 0, to: 1, create_if_not_exists: true })).toEqual({ ok: true });
    expect(s.get('new')).toBe(1);
  });

  it('compares cas values structurally', () => {
    const s = new KvStore();
    s.apply({ op: 'write', key: 'k', value: { x: 1, y: [1] } });
    expect(s.apply({ op: 'cas', key: 'k', from: { y: [1], x: 1 }, to: 'z' })).toEqual({ ok: true });
  });

  it('a frozen view keeps the state of the moment it was taken while writes go on', () => {
    const s = KvStore.fromEntries([
      [1, 'a'],
      [2, 'b'],
      [[1], 'arr'],
    ]);
    const view = s.freeze();
    s.apply({ op: 'write', key: 1, value: 'changed' });
    s.apply({ op: 'write', key: 3, value: 'new' });
    s.apply({ op: 'write', key: [1], value: 'changed-arr' });
    s.apply({ op: 'write', key: [2], value: 'new-arr' });
    expect(view.entries()).toEqual([
      [1, 'a'],
      [2, 'b'],
      [[1], 'arr'],
    ]);
    view.release();
    expect(new Map(s.entries()).get(1)).toBe('changed');
  });

  it('a view taken before reset still reads the old state', () => {
    const s = KvStore.fromEntries([[1, 'a']]);
    const view = s.freeze();
    s.reset([[9, 'z']]);
    s.apply({ op: 'write', key: 1, value: 'after-reset' });
    expect(view.entries()).toEqual([[1, 'a']]);
    expect([...s.entries()]).toEqual([
      [9, 'z'],
      [1, 'after-reset'],
    ]);
  });

  it('frozen views equal the state at freeze time under random interleavings (property)', () => {
    const key = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('0', '1', 'a'), fc.constant([0]));
    const write = fc.record({ key, value: fc.integer({ min: 0, max: 4 }) });
    fc.assert(
      fc.property(fc.array(write), fc.array(write), fc.integer({ min: 1, max: 4 }), (before, after, chunk) => {
        const s = new KvStore();
        for (const w of before) s.apply({ op: 'write', key: w.key as Json, value: w.value });
        const expected = [...s.entries()];
        const view = s.freeze();
        const got: Array<[Json, Json]> = [];
        const it = view.chunks(chunk);
        // interleave: one chunk, then a write, ...
        let i = 0;
        for (let c = it.next(); !c.done; c = it.next()) {
          got.push(...c.value);
          if (i < after.length) s.apply({ op: 'write', key: after[i]!.key as Json, value: after[i]!.value });
          i++;
        }
        view.release();
        expect(got).toEqual(expected);
      }),
    );
  });
});

describe('FrozenView.columns', () => {
  it('gives the same pairs, order and chunking as chunks() while writes go on (property)', () => {
    const key = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('0', '1', 'a'), fc.constant([0]), fc.constant(null));
    const write = fc.record({ key, value: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant('s')) });
    fc.assert(
      fc.property(fc.array(write), fc.array(write), fc.integer({ min: 1, max: 4 }), (before, after, chunk) => {
        const s = new KvStore();
        for (const w of before) s.apply({ op: 'write', key: w.key as Json, value: w.value });
        const expected = [...s.entries()];
        const expectedChunks: Array<Array<[Json, Json]>> = [...s.freeze().chunks(chunk)];
        const view = s.freeze();
        const got: Array<Array<[Json, Json]>> = [];
        let i = 0;
        for (const c of view.columns(chunk)) {
          expect(c.keys.length).toBe(c.values.length);
          got.push(c.keys.map((k, j) => [k, c.values[j]!]));
          if (i < after.length) s.apply({ op: 'write', key: after[i]!.key as Json, value: after[i]!.value });
          i++;
        }
        view.release();
        expect(got).toEqual(expectedChunks);
        expect(got.flat()).toEqual(expected);
      }),
    );
  });
});

describe('canonical keys', () => {
  it('sorts object keys and keeps types', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
    expect(canonicalJson(1)).not.toBe(canonicalJson('1'));
    expect(jsonEqual([1, { a: 1, b: 2 }], [1, { b: 2, a: 1 }])).toBe(true);
    expect(jsonEqual(1, '1')).toBe(false);
  });
});

describe('asKvCommand', () => {
  it('accepts the three lin-kv operations and rejects anything else', () => {
    expect(asKvCommand({ op: 'read', key: 1 })).toEqual({ op: 'read', key: 1 });
    expect(asKvCommand({ op: 'write', key: 1, value: null })).toEqual({ op: 'write', key: 1, value: null });
    expect(asKvCommand({ op: 'cas', key: 1, from: 1, to: 2 })).toMatchObject({ op: 'cas', from: 1, to: 2 });
    expect(asKvCommand({ op: 'write', key: 1 })).toBeNull();
    expect(asKvCommand({ op: 'delete', key: 1 })).toBeNull();
    expect(asKvCommand(null)).toBeNull();
    expect(asKvCommand([1])).toBeNull();
  });
});
