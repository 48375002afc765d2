import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkHistory, parseHistoryText, toOperations } from '../../src/check/index.js';
import { cas, hist, op, read, sequentialHistory, write } from './gen.js';

const verdict = (h: ReturnType<typeof hist>) => checkHistory(h).verdict;

describe('linearizability checker: hand-made histories', () => {
  it('accepts a sequential history', () => {
    expect(verdict(hist(write(0, 1, 0, 1), read(0, 1, 2, 3), cas(0, 1, 2, 4, 5), read(0, 2, 6, 7)))).toBe('linearizable');
  });

  it('a never-written key reads as null', () => {
    expect(verdict(hist(read(0, null, 0, 1), write(0, 3, 2, 3), read(0, 3, 4, 5)))).toBe('linearizable');
    expect(verdict(hist(read(0, 3, 0, 1)))).toBe('not-linearizable');
  });

  it('rejects a stale read', () => {
    const r = checkHistory(hist(write(0, 1, 0, 1), write(0, 2, 2, 3), read(0, 1, 4, 5)));
    expect(r.verdict).toBe('not-linearizable');
    expect(r.violations).toHaveLength(1);
    const v = r.violations[0]!;
    expect(v.key).toBe(0);
    // All three operations are needed to show the problem.
    expect(v.ops.map((o) => o.f)).toEqual(['write', 'write', 'read']);
    expect(v.message).toContain('key 0');
  });

  it('rejects a lost write', () => {
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3), read(0, null, 4, 5)))).toBe('not-linearizable');
    expect(verdict(hist(write(0, 4, 0, 1), read(0, null, 2, 3)))).toBe('not-linearizable');
  });

  it('rejects a cas that saw a value never written', () => {
    expect(verdict(hist(write(0, 1, 0, 1), cas(0, 3, 4, 2, 3)))).toBe('not-linearizable');
    // ...and a read of the value that cas would have written.
    expect(verdict(hist(write(0, 1, 0, 1), cas(0, 3, 4, 2, 3), read(0, 4, 5, 6)))).toBe('not-linearizable');
  });

  it('an indeterminate write may appear later', () => {
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3, 'info', 0), read(0, 1, 4, 5), read(0, 2, 10, 11)))).toBe(
      'linearizable',
    );
    // No completion at all counts the same.
    expect(verdict(hist(write(0, 2, 2, 3, 'none'), read(0, null, 4, 5), read(0, 2, 100, 101)))).toBe('linearizable');
    // An error with an indefinite code (crash 13, application codes >= 1000) too.
    expect(verdict(hist(write(0, 2, 2, 3, 'fail', 13), read(0, 2, 4, 5)))).toBe('linearizable');
    expect(verdict(hist(write(0, 2, 2, 3, 'fail', 1000), read(0, 2, 4, 5)))).toBe('linearizable');
  });

  it('an indeterminate write may never be seen', () => {
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3, 'info', 0), read(0, 1, 4, 5), read(0, 1, 10, 11)))).toBe(
      'linearizable',
    );
  });

  it('an indeterminate write cannot take effect before it was invoked', () => {
    expect(verdict(hist(read(0, 2, 0, 1), write(0, 2, 2, 3, 'info', 0)))).toBe('not-linearizable');
  });

  it('an indeterminate write that is seen, then unseen, is not linearizable', () => {
    expect(
      verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3, 'info', 0), read(0, 2, 4, 5), read(0, 1, 6, 7))),
    ).toBe('not-linearizable');
  });

  it('indeterminate reads are dropped', () => {
    const h = hist(write(0, 1, 0, 1), op('read', 0, null, 2, 3, 'info', { code: 0 }));
    const parsed = toOperations(h);
    expect(parsed.ops).toHaveLength(1);
    expect(parsed.dropped).toBe(1);
  });

  it('definite failures did not happen', () => {
    // A write that failed with 11 (temporarily unavailable) must not be seen.
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3, 'fail', 11), read(0, 1, 4, 5)))).toBe('linearizable');
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 3, 'fail', 11), read(0, 2, 4, 5)))).toBe('not-linearizable');
  });

  it('checks cas failures as observations', () => {
    // 20: the key was absent at that instant.
    expect(verdict(hist(cas(0, 1, 2, 0, 1, 'fail', 20)))).toBe('linearizable');
    expect(verdict(hist(write(0, 1, 0, 1), cas(0, 1, 2, 2, 3, 'fail', 20)))).toBe('not-linearizable');
    // 22: the value differed from `from`.
    expect(verdict(hist(write(0, 1, 0, 1), cas(0, 3, 2, 2, 3, 'fail', 22)))).toBe('linearizable');
    expect(verdict(hist(write(0, 1, 0, 1), cas(0, 1, 2, 2, 3, 'fail', 22)))).toBe('not-linearizable');
    // 22 on an absent key is wrong too (that is 20's job).
    expect(verdict(hist(cas(0, 1, 2, 0, 1, 'fail', 22)))).toBe('not-linearizable');
    // A concurrent write makes the mismatch possible.
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 3, 2, 6), cas(0, 1, 2, 3, 5, 'fail', 22)))).toBe('linearizable');
  });

  it('concurrent overlapping operations may take effect in either order', () => {
    // Two overlapping writes, then reads that see either one.
    for (const seen of [1, 2]) {
      expect(verdict(hist(write(0, 1, 0, 10), write(0, 2, 1, 9), read(0, seen, 11, 12)))).toBe('linearizable');
    }
    // A read overlapping a write can see the old or the new value.
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 10), read(0, 1, 3, 4), read(0, 2, 5, 6)))).toBe('linearizable');
    // ...but not new then old.
    expect(verdict(hist(write(0, 1, 0, 1), write(0, 2, 2, 10), read(0, 2, 3, 4), read(0, 1, 5, 6)))).toBe(
      'not-linearizable',
    );
    // Two cas racing from the same value: only one may succeed.
    expect(verdict(hist(write(0, 0, 0, 1), cas(0, 0, 1, 2, 5), cas(0, 0, 2, 3, 6)))).toBe('not-linearizable');
    expect(verdict(hist(write(0, 0, 0, 1), cas(0, 0, 1, 2, 5), cas(0, 1, 2, 3, 6)))).toBe('linearizable');
  });

  it('checks keys independently and reports the bad one', () => {
    const r = checkHistory(hist(write(0, 1, 0, 1), read(0, 1, 2, 3), write('k', 1, 0, 1), read('k', 2, 2, 3)));
    expect(r.verdict).toBe('not-linearizable');
    expect(r.keys.map((k) => [k.key, k.verdict])).toEqual([
      [0, 'linearizable'],
      ['k', 'not-linearizable'],
    ]);
  });

  it('returns unknown when the budget is exceeded', () => {
    // Many concurrent writes of distinct values, each read back once by an overlapping read, and
    // a final impossible read: the search has a huge space to exhaust.
    const parts = [];
    for (let i = 0; i < 60; i++) parts.push(write(0, i, 0, 100));
    for (let i = 0; i < 60; i++) parts.push(read(0, i, 1, 100));
    parts.push(read(0, 'never', 101, 102));
    const r = checkHistory(hist(...parts), { timeBudgetMs: 50, explain: false });
    expect(r.verdict).toBe('unknown');
    expect(r.keys[0]!.verdict).toBe('unknown');
    // With a budget, the same history is proved not linearizable.
    const small = hist(write(0, 1, 0, 10), write(0, 2, 0, 10), read(0, 1, 1, 10), read(0, 2, 1, 10), read(0, 'never', 11, 12));
    expect(checkHistory(small, { timeBudgetMs: 5000 }).verdict).toBe('not-linearizable');
  });

  it('parses the JSON-lines format', () => {
    const text = [
      '{"type":"invoke","process":0,"f":"write","key":1,"value":3,"time":0}',
      '',
      '{"type":"ok","process":0,"f":"write","key":1,"value":3,"time":1}',
      '{"type":"invoke","process":1,"f":"read","key":1,"value":null,"time":2}',
      '{"type":"ok","process":1,"f":"read","key":1,"value":3,"time":3}',
    ].join('\n');
    expect(checkHistory(parseHistoryText(text)).verdict).toBe('linearizable');
    expect(() => parseHistoryText('{"type":"bogus"}')).toThrow(/line 1/);
  });
});

describe('linearizability checker: generated histories', () => {
  it('histories of a real sequential execution with random overlap are linearizable', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        (seed, ops, processes, keys) => {
          const h = sequentialHistory({ seed, ops, processes, keys, pInfo: 0.1 });
          const r = checkHistory(h);
          return r.verdict === 'linearizable';
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a corrupted read in such a history is usually caught, never crashes the checker', () => {
    let caught = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const h = sequentialHistory({ seed, ops: 60, processes: 4, keys: 1, pInfo: 0 });
      const reads = h.filter((e) => e.type === 'ok' && e.f === 'read');
      const victim = reads[reads.length - 1];
      if (!victim) continue;
      victim.value = 'never-written';
      if (checkHistory(h).verdict === 'not-linearizable') caught++;
    }
    expect(caught).toBeGreaterThan(15);
  });

  it('checks a 10,000-operation history (concurrency 10, many keys) quickly', () => {
    const h = sequentialHistory({ seed: 42, ops: 10_000, processes: 10, keys: 40, pInfo: 0.02 });
    const t0 = performance.now();
    const r = checkHistory(h);
    const ms = performance.now() - t0;
    console.log(`10,000 operations over ${r.keys.length} keys checked in ${ms.toFixed(1)} ms: ${r.verdict}`);
    expect(r.verdict).toBe('linearizable');
    expect(r.ops + r.dropped).toBe(10_000);
  });

  it('checks a 10,000-operation history on few keys', () => {
    const h = sequentialHistory({ seed: 7, ops: 10_000, processes: 10, keys: 4, pInfo: 0.02 });
    const t0 = performance.now();
    const r = checkHistory(h);
    console.log(`10,000 operations over ${r.keys.length} keys checked in ${(performance.now() - t0).toFixed(1)} ms: ${r.verdict}`);
    expect(r.verdict).toBe('linearizable');
  });
});
