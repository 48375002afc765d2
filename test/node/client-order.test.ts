import { describe, expect, it } from 'vitest';
import { ClientOrder } from '../../src/node/client-order.js';

describe('ClientOrder', () => {
  it('gives each client its last proposed index, 0 for one never seen', () => {
    const o = new ClientOrder(4);
    expect(o.lastFor('c1')).toBe(0);
    o.proposed('c1', 5);
    o.proposed('c2', 6);
    o.proposed('c1', 9);
    expect(o.lastFor('c1')).toBe(9);
    expect(o.lastFor('c2')).toBe(6);
    expect(o.lastFor('c3')).toBe(0);
  });

  it('past its bound it forgets the least recent clients, and answers for them at least what they had', () => {
    const o = new ClientOrder(3);
    o.proposed('a', 10);
    o.proposed('b', 20);
    o.proposed('c', 15);
    o.proposed('a', 30); // a is recent again: b goes first
    o.proposed('d', 31);
    expect(o.lastFor('b')).toBeGreaterThanOrEqual(20);
    o.proposed('e', 32); // c goes
    expect(o.lastFor('c')).toBeGreaterThanOrEqual(15);
    expect(o.lastFor('a')).toBe(30);
    expect(o.lastFor('never')).toBe(20); // the highest forgotten: never below a forgotten client's
  });
});
