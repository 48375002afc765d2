/**
 * What a crash can leave of a SimFs state (sim-fs.ts): one drawn (or the clean, or the complete)
 * post-crash state, and the enumeration of the distinct ones for the ALICE-style check.
 *
 * A post-crash state: each directory keeps a prefix of its pending operations (a two-directory
 * rename is kept only if both directories' prefixes include it, so the prefixes are shrunk until
 * they agree); the tree is whatever is then reachable from the root; each reachable file keeps its
 * durable bytes plus a prefix of its pending writes at sector pieces (sim-fs-model.ts).
 */
import { Random } from './random.js';
import {
  applyPrefix,
  Bytes,
  drawGarble,
  pickCut,
  pieces,
  totalPieces,
  ROOT_INO,
  type CrashHow,
  type CrashOptions,
  type DirNode,
  type FileNode,
  type FileOp,
  type FsNode,
  type FsState,
} from './sim-fs-model.js';
import type { SimFs } from './sim-fs.js';

export interface CrashStatesOptions {
  /** At most this many states (default 1000); past it a seeded sample, always with the clean and the complete state. */
  limit?: number;
  /**
   * Which prefixes of a file's pending writes (default 'representative': none; the end of every
   * write and truncation, the last being all; half-way through the last write that spans several
   * sectors; all up to the end of the last write with its last piece garbled). 'every-sector':
   * every sector prefix, plus the garbled one.
   */
  cuts?: 'representative' | 'every-sector';
  /** What the garbled choice writes (default 'random': seeded random bytes); 'none' leaves the garbled choice out. */
  garbage?: 'zeros' | 'random' | 'none';
  /** For the sample and the random bytes (default new Random(1)). */
  rng?: Random;
}

export interface CrashState {
  fs: SimFs;
  /** What was kept, e.g. "/d: 1/2 ops; /d/f: 3/5 pieces, last garbled" (only what had pending operations). */
  label: string;
}

export interface CrashStates {
  states: CrashState[];
  /** Distinct choice combinations found (exact unless `sampled` and more than 100,000 directory combinations). */
  total: number;
  /** True when `states` is a sample of `total`. */
  sampled: boolean;
}

/** Directory combinations tried before the directory cuts are sampled instead. */
const DIR_COMBOS = 100_000;

interface Reached {
  dirs: Array<{ node: DirNode; path: string; entries: Map<string, number> }>;
  files: Array<{ node: FileNode; path: string }>;
}

function dirsWithOps(s: FsState): DirNode[] {
  const out: DirNode[] = [];
  for (const n of s.inodes.values()) if (n.kind === 'dir' && n.ops.length > 0) out.push(n);
  return out.sort((a, b) => a.ino - b.ino);
}

/** Shrink the cuts until every kept two-directory operation is kept in both of its directories. */
function resolveCuts(s: FsState, cuts: Map<number, number>): void {
  let changed = true;
  while (changed) {
    changed = false;
    for (const [ino, cut] of cuts) {
      const d = s.inodes.get(ino) as DirNode;
      for (let i = 0; i < cut; i++) {
        const op = d.ops[i]!;
        if (op.dirs.length === 1) continue;
        const dropped = op.dirs.some((o) => o !== ino && (cuts.get(o) ?? 0) <= (s.inodes.get(o) as DirNode).ops.indexOf(op));
        if (dropped) {
          cuts.set(ino, i);
          changed = true;
          break;
        }
      }
    }
  }
}

function entriesAfter(d: DirNode, cut: number): Map<string, number> {
  if (cut === 0) return d.durable;
  const m = new Map(d.durable);
  for (let i = 0; i < cut; i++) {
    for (const c of d.ops[i]!.changes) {
      if (c.dir !== d.ino) continue;
      if (c.ino === null) m.delete(c.name);
      else m.set(c.name, c.ino);
    }
  }
  return m;
}

/** The tree a crash with these directory cuts leaves, reached from the root. */
function reach(s: FsState, cuts: Map<number, number>): Reached {
  const out: Reached = { dirs: [], files: [] };
  const seen = new Set<number>();
  const walk = (d: DirNode, p: string): void => {
    seen.add(d.ino);
    const entries = entriesAfter(d, cuts.get(d.ino) ?? 0);
    out.dirs.push({ node: d, path: p === '' ? '/' : p, entries });
    for (const [name, ino] of entries) {
      if (seen.has(ino)) continue;
      const n = s.inodes.get(ino)!;
      if (n.kind === 'dir') walk(n, `${p}/${name}`);
      else {
        seen.add(ino);
        out.files.push({ node: n, path: `${p}/${name}` });
      }
    }
  };
  walk(s.inodes.get(ROOT_INO) as DirNode, '');
  return out;
}

/** A fresh state (no pending operations) from what `reach` found and each file's kept bytes. */
function build(s: FsState, r: Reached, content: (f: FileNode, i: number) => Bytes): FsState {
  const inodes = new Map<number, FsNode>();
  for (const { node, entries } of r.dirs) {
    inodes.set(node.ino, { kind: 'dir', ino: node.ino, entries: new Map(entries), durable: new Map(entries), ops: [], nlink: node.ino === ROOT_INO ? 1 : 0, open: 0, mtimeMs: node.mtimeMs });
  }
  r.files.forEach(({ node }, i) => {
    const cur = content(node, i);
    inodes.set(node.ino, { kind: 'file', ino: node.ino, cur, dur: cur.fork(), ops: [], log: Bytes.empty(), lost: false, nlink: 0, open: 0, mtimeMs: node.mtimeMs });
  });
  for (const { entries } of r.dirs) for (const ino of entries.values()) inodes.get(ino)!.nlink++;
  return { inodes, nextIno: s.nextIno };
}

function keptBytes(f: FileNode, k: number, garble: 'zeros' | Random | null): Bytes {
  if (k === 0) return f.dur.fork();
  if (garble === null && !f.lost && k >= totalPieces(f.ops)) return f.cur.fork();
  const b = f.dur.fork();
  applyPrefix(b, f.ops, f.log, k, garble);
  return b;
}

/** The state after a crash (see CrashHow); `s` is not changed. */
export function buildCrashState(s: FsState, how: CrashHow, opts: CrashOptions): FsState {
  const cuts = new Map<number, number>();
  for (const d of dirsWithOps(s)) cuts.set(d.ino, how === 'clean' ? 0 : how === 'all' ? d.ops.length : pickCut(how, d.ops.length));
  resolveCuts(s, cuts);
  return build(s, reach(s, cuts), (f) => {
    if (how === 'clean') return f.dur.fork();
    if (how === 'all') return keptBytes(f, totalPieces(f.ops), null);
    const k = pickCut(how, totalPieces(f.ops));
    return keptBytes(f, k, k > 0 ? drawGarble(how, opts) : null);
  });
}

interface FileChoice {
  k: number;
  garble: boolean;
}

function fileChoices(ops: readonly FileOp[], mode: 'representative' | 'every-sector', garbage: 'zeros' | 'random' | 'none'): { choices: FileChoice[]; all: number; total: number } {
  const total = totalPieces(ops);
  const ks = new Set<number>([0, total]);
  let c = 0;
  let lastWriteEnd = 0;
  let lastMulti: [number, number] | null = null;
  for (const op of ops) {
    const p = pieces(op);
    if (op.t === 'w' && p > 0) {
      lastWriteEnd = c + p;
      if (p > 1) lastMulti = [c, p];
    }
    c += p;
    ks.add(c);
  }
  if (mode === 'every-sector') for (let k = 0; k <= total; k++) ks.add(k);
  else if (lastMulti !== null) ks.add(lastMulti[0] + Math.floor(lastMulti[1] / 2));
  const choices: FileChoice[] = [...ks].sort((a, b) => a - b).map((k) => ({ k, garble: false }));
  const all = choices.length - 1;
  if (garbage !== 'none' && lastWriteEnd > 0) choices.push({ k: lastWriteEnd, garble: true });
  return { choices, all, total };
}

interface Outcome {
  cuts: Map<number, number>;
  reached: Reached;
  files: Array<{ node: FileNode; path: string; choices: FileChoice[]; all: number; total: number }>;
  count: number;
  dirLabel: string[];
}

/**
 * Enumerate the distinct crash states of `s`: every combination of directory prefixes (deduplicated
 * by the tree they leave: a directory that is not reachable does not multiply the states) times,
 * for every reachable file with pending writes, the representative prefixes (CrashStatesOptions.cuts).
 */
export function crashStates(s: FsState, opts: CrashStatesOptions, make: (st: FsState) => SimFs): CrashStates {
  const limit = opts.limit ?? 1000;
  const mode = opts.cuts ?? 'representative';
  const garbage = opts.garbage ?? 'random';
  const rng = opts.rng ?? new Random(1);
  const dirs = dirsWithOps(s);
  const outcomes: Outcome[] = [];
  const byKey = new Map<string, number>();
  const visit = (cutList: readonly number[]): number => {
    const cuts = new Map<number, number>(dirs.map((d, i) => [d.ino, cutList[i]!]));
    resolveCuts(s, cuts);
    const reached = reach(s, cuts);
    const dirLabel: string[] = [];
    const keyParts: string[] = [];
    for (const { node, path } of reached.dirs) {
      if (node.ops.length === 0) continue;
      keyParts.push(`${node.ino}:${cuts.get(node.ino)}`);
      dirLabel.push(`${path}: ${cuts.get(node.ino)}/${node.ops.length} ops`);
    }
    const key = keyParts.join(',');
    const known = byKey.get(key);
    if (known !== undefined) return known;
    const files = reached.files.filter((f) => f.node.ops.length > 0).map((f) => ({ ...f, ...fileChoices(f.node.ops, mode, garbage) }));
    const count = files.reduce((a, f) => a * f.choices.length, 1);
    outcomes.push({ cuts, reached, files, count, dirLabel });
    byKey.set(key, outcomes.length - 1);
    return outcomes.length - 1;
  };

  const radix = dirs.map((d) => d.ops.length + 1);
  const combos = radix.reduce((a, b) => a * b, 1);
  const full = radix.map((r) => r - 1);
  let sampled = false;
  if (combos <= DIR_COMBOS) {
    const cur = radix.map(() => 0);
    for (let n = 0; n < combos; n++) {
      visit(cur);
      for (let i = 0; i < cur.length; i++) {
        if (++cur[i]! < radix[i]!) break;
        cur[i] = 0;
      }
    }
  } else {
    sampled = true;
    visit(radix.map(() => 0));
    visit(full);
    for (let n = 0; n < DIR_COMBOS; n++) visit(radix.map((r) => rng.int(r)));
  }
  const allOutcome = visit(full);

  const starts: number[] = [];
  let total = 0;
  for (const o of outcomes) {
    starts.push(total);
    total += o.count;
  }
  let picks: number[];
  if (total <= limit) picks = Array.from({ length: total }, (_, i) => i);
  else {
    sampled = true;
    const ao = outcomes[allOutcome]!;
    let allLocal = 0;
    let stride = 1;
    for (const f of ao.files) {
      allLocal += f.all * stride;
      stride *= f.choices.length;
    }
    const set = new Set<number>([0, starts[allOutcome]! + allLocal]);
    while (set.size < limit) set.add(Math.floor((rng.nextU32() * 4294967296 + rng.nextU32()) % total));
    picks = [...set].sort((a, b) => a - b);
  }

  const states: CrashState[] = picks.map((idx) => {
    let lo = 0;
    let hi = outcomes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= idx) lo = mid;
      else hi = mid - 1;
    }
    const o = outcomes[lo]!;
    let local = idx - starts[lo]!;
    const chosen = new Map<number, FileChoice>();
    const label = o.dirLabel.slice();
    for (const f of o.files) {
      const ch = f.choices[local % f.choices.length]!;
      local = Math.floor(local / f.choices.length);
      chosen.set(f.node.ino, ch);
      label.push(`${f.path}: ${ch.k}/${f.total} pieces${ch.garble ? `, last ${garbage === 'zeros' ? 'zeroed' : 'garbled'}` : ''}`);
    }
    const bytesRng = new Random(rng.nextU32() ^ idx);
    const st = build(s, o.reached, (f) => {
      const ch = chosen.get(f.ino);
      if (ch === undefined) return f.dur.fork();
      return keptBytes(f, ch.k, ch.garble ? (garbage === 'zeros' ? 'zeros' : bytesRng) : null);
    });
    return { fs: make(st), label: label.length > 0 ? label.join('; ') : 'nothing pending' };
  });
  return { states, total, sampled };
}
