import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSize } from '../../src/node/snapshotter.js';
import type { Json } from '../../src/raft/types.js';

describe('jsonSize (the snapshot threshold in bytes counts applied commands without stringifying them)', () => {
  it('equals JSON.stringify(v).length for values whose strings need no escapes', () => {
    const plain = fc.stringMatching(/^[a-zA-Z0-9 :/_-]{0,20}$/);
    const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        plain,
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(plain, tie('v'), { maxKeys: 4 }),
      ),
    })).v;
    fc.assert(fc.property(json, (v) => jsonSize(v) === JSON.stringify(v).length));
  });

  it('a lin-kv command', () => {
    const cmd = { op: 'cas', key: 'user:17', from: [1, 2], to: { a: -3.5 }, session: { origin: 'n2/abc', id: 12, low: 9 } };
    expect(jsonSize(cmd)).toBe(JSON.stringify(cmd).length);
  });
});
