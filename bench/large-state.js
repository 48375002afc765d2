// Large states for the install, recovery and catch-up benchmarks (bench/install.js,
// bench/recovery.js, bench/catchup.js): the same pairs in every run.
//   mixed = string keys of three kinds (`user:<n>`, hex ids, path-like keys) in a pseudo-random
//           order, with mixed JSON values (integers, short strings, small arrays and objects), the
//           generator bench/snapshot.js's `mixed` state uses too;
//   int   = integer keys 0..N-1 in order, values 0..4 (Maelstrom's lin-kv shape).

/** xorshift32 with a fixed seed. */
export function xorshift(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** A bijection of 32-bit integers (distinct n give distinct hex ids). */
export function mix32(n) {
  let h = n >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa'];
const STATUS = ['active', 'pending', 'closed', 'archived'];

/** The mixed state's pair number i of `keys` (keys distinct for distinct i), drawing from `rnd`. */
export function mixedPair(i, rnd, keys) {
  let key;
  const kind = rnd() % 3;
  if (kind === 0) key = `user:${i}`;
  else if (kind === 1) key = mix32(i).toString(16).padStart(8, '0') + mix32(i ^ 0x5bd1e995).toString(16).padStart(8, '0');
  else key = `/org/${i % 97}/repo/${(i >>> 5) % 1000}/${WORDS[i % 16]}-${i}.json`;
  let value;
  const r = rnd() % 100;
  if (r < 35) value = r < 20 ? rnd() % 1000 : rnd() % 10000000;
  else if (r < 60) value = r < 45 ? WORDS[rnd() % 16] : (rnd() % 2176782336).toString(36);
  else if (r < 75) {
    const n = 1 + (rnd() % 4);
    value = [];
    for (let j = 0; j < n; j++) value.push(r < 68 ? rnd() % 100 : WORDS[rnd() % 16]);
  } else if (r < 88) value = { id: rnd() % 100000, name: WORDS[rnd() % 16], active: rnd() % 2 === 0 };
  else value = { owner: `user:${rnd() % keys}`, status: STATUS[rnd() % 4], score: rnd() % 1000, tags: [WORDS[rnd() % 16], WORDS[rnd() % 16]] };
  return [key, value];
}

/** Calls `each(key, value)` for the `n` pairs of state `kind` ('mixed' or 'int'), in insertion order. */
export function forEachPair(kind, n, each) {
  if (kind === 'int') {
    for (let i = 0; i < n; i++) each(i, (i * 7919) % 5);
    return;
  }
  if (kind !== 'mixed') throw new Error(`unknown state ${kind}`);
  const order = Array.from({ length: n }, (_, i) => i);
  const shuffle = xorshift(0x9e3779b9);
  for (let i = n - 1; i > 0; i--) {
    const j = shuffle() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const rnd = xorshift(0x2545f491);
  for (let m = 0; m < n; m++) {
    const [k, v] = mixedPair(order[m], rnd, n);
    each(k, v);
  }
}
