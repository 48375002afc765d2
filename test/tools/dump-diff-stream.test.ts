// `diff` streamed (src/tools/diff-stream.ts) gives exactly what diffStates gives on the states
// built in memory (src/tools/diff.ts), for every pair of fixture snapshots and directories.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffStates } from '../../src/tools/diff.js';
import { streamDiff } from '../../src/tools/diff-stream.js';
import { loadState } from '../../src/tools/load.js';
import { ROOT } from '../commands/helpers.js';

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
