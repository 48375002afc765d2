import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SECTOR_BYTES, SimCrash, SimFs, isSimCrash } from '../../src/sim/sim-fs.js';
import { Random } from '../../src/sim/random.js';
import type { FileSystem, OpenFlags } from '../../src/storage/fs.js';
import { nodeFs } from '../../src/storage/node-fs.js';
import { fsError } from '../../src/storage/errors.js';
import { tmpDir } from '../storage/helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : b);

function writeAll(fs: FileSystem, fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += fs.write(fd, data, off, data.length - off);
}

/** Create or replace a file and fsync it (the directory is not fsynced). */
function putFile(fs: FileSystem, p: string, data: string, sync = true): void {
  const fd = fs.open(p, 'w');
  writeAll(fs, fd, enc(data));
  if (sync) fs.fsync(fd);
  fs.close(fd);
}

function fsyncDir(fs: FileSystem, dir: string): void {
  const fd = fs.open(dir, 'r');
  fs.fsync(fd);
  fs.close(fd);
}

/** The atomic replace the storage library does: temp file, fsync, rename, directory fsync. */
function writeAtomic(fs: FileSystem, file: string, data: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.open(tmp, 'wx');
  try {
    writeAll(fs, fd, enc(data));
    fs.fsync(fd);
  } finally {
    fs.close(fd);
  }
  fs.rename(tmp, file);
  fsyncDir(fs, path.posix.dirname(file));
}

function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

const text = (m: Map<string, Uint8Array | null>) => Object.fromEntries([...m].map(([k, v]) => [k, v === null ? 'dir' : dec(v)]));

// ---------------------------------------------------------------------------------------------
// Behaves like node:fs

type Cmd =
  | { c: 'open'; p: string; flags: OpenFlags }
  | { c: 'close' | 'fsync' | 'fstat'; h: number }
  | { c: 'write'; h: number; data: Uint8Array; pos: number | null }
  | { c: 'read'; h: number; len: number; pos: number | null }
  | { c: 'ftruncate'; h: number; len: number }
  | { c: 'rename' | 'link'; p: string; q: string }
  | { c: 'unlink' | 'rmdir' | 'readdir' | 'stat' | 'readFile'; p: string }
  | { c: 'mkdir'; p: string; rec: boolean };

const NAMES = ['a', 'b', 'd', 'd/a', 'd/e', 'd/e/f', 'a/x', 'g'];

const nameArb = fc.constantFrom(...NAMES);
const handleArb = fc.nat({ max: 5 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ c: fc.constant('open' as const), p: nameArb, flags: fc.constantFrom<OpenFlags>('r', 'r+', 'a', 'w', 'wx') }) },
  fc.record({ c: fc.constantFrom('close' as const, 'fsync' as const, 'fstat' as const), h: handleArb }),
  {
    weight: 4,
    arbitrary: fc.record({
      c: fc.constant('write' as const),
      h: handleArb,
      data: fc.uint8Array({ minLength: 0, maxLength: 700 }),
      pos: fc.option(fc.nat({ max: 1200 }), { nil: null }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('read' as const), h: handleArb, len: fc.nat({ max: 900 }), pos: fc.option(fc.nat({ max: 1200 }), { nil: null }) }) },
  fc.record({ c: fc.constant('ftruncate' as const), h: handleArb, len: fc.integer({ min: -5, max: 1500 }) }),
  { weight: 2, arbitrary: fc.record({ c: fc.constantFrom('rename' as const, 'link' as const), p: nameArb, q: nameArb }) },
  { weight: 3, arbitrary: fc.record({ c: fc.constantFrom('unlink' as const, 'rmdir' as const, 'readdir' as const, 'stat' as const, 'readFile' as const), p: nameArb }) },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('mkdir' as const), p: nameArb, rec: fc.boolean() }) },
);

/** Run `cmds` on `fs` under `root`; one normalized outcome per command. */
function runCmds(fs: FileSystem, root: string, cmds: readonly Cmd[]): string[] {
  const fds: number[] = [];
  const at = (p: string) => `${root}/${p}`;
  const out = cmds.map((c) => {
    try {
      switch (c.c) {
        case 'open':
          fds.push(fs.open(at(c.p), c.flags));
          return 'fd';
        case 'close': {
          if (fds.length === 0) return 'none';
          const i = c.h % fds.length;
          fs.close(fds[i]!);
          fds.splice(i, 1);
          return 'ok';
        }
        case 'fsync':
          if (fds.length === 0) return 'none';
          fs.fsync(fds[c.h % fds.length]!);
          return 'ok';
        case 'fstat': {
          if (fds.length === 0) return 'none';
          const st = fs.fstat(fds[c.h % fds.length]!);
          return st.isFile() ? `file ${st.size}` : 'dir';
        }
        case 'write':
          if (fds.length === 0) return 'none';
          return `wrote ${fs.write(fds[c.h % fds.length]!, c.data, 0, c.data.length, c.pos)}`;
        case 'read': {
          if (fds.length === 0) return 'none';
          const buf = new Uint8Array(c.len);
          const n = fs.read(fds[c.h % fds.length]!, buf, 0, c.len, c.pos);
          return `read ${Buffer.from(buf.subarray(0, n)).toString('hex')}`;
        }
        case 'ftruncate':
          if (fds.length === 0) return 'none';
          fs.ftruncate(fds[c.h % fds.length]!, c.len);
          return 'ok';
        case 'rename':
          fs.rename(at(c.p), at(c.q));
          return 'ok';
        case 'link':
          fs.link(at(c.p), at(c.q));
          return 'ok';
        case 'unlink':
          fs.unlink(at(c.p));
          return 'ok';
        case 'rmdir':
          fs.rmdir(at(c.p));
          return 'ok';
        case 'readdir':
          return fs.readdir(at(c.p)).sort().join(',');
        case 'stat': {
          const st = fs.stat(at(c.p));
          return st.isFile() ? `file ${st.size}` : 'dir';
        }
        case 'readFile':
          return Buffer.from(fs.readFile(at(c.p))).toString('hex');
        case 'mkdir':
          fs.mkdir(at(c.p), { recursive: c.rec });
          return 'ok';
      }
    } catch (e) {
      return `error ${(e as NodeJS.ErrnoException).code}`;
    }
  });
  for (const fd of fds) fs.close(fd);
  return out;
}

/** Every file (hex) and directory under `root`, through the FileSystem interface. */
function tree(fs: FileSystem, root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdir(root + rel)) {
      const p = `${rel}/${name}`;
      if (fs.stat(root + p).isDirectory()) {
        out[p] = 'dir';
        walk(p);
      } else out[p] = Buffer.from(fs.readFile(root + p)).toString('hex');
    }
  };
  walk('');
  return out;
}

describe('SimFs behaves like node:fs', () => {
  it('on a fixed sequence of calls', () => {
    const cmds: Cmd[] = [
      { c: 'mkdir', p: 'd', rec: false },
      { c: 'mkdir', p: 'd', rec: false },
      { c: 'mkdir', p: 'd/e/f', rec: true },
      { c: 'open', p: 'a', flags: 'wx' },
      { c: 'write', h: 0, data: enc('hello world'), pos: null },
      { c: 'write', h: 0, data: enc('HE'), pos: 0 },
      { c: 'write', h: 0, data: enc('!'), pos: null },
      { c: 'open', p: 'a', flags: 'wx' },
      { c: 'open', p: 'a', flags: 'r' },
      { c: 'read', h: 1, len: 5, pos: null },
      { c: 'read', h: 1, len: 100, pos: 3 },
      { c: 'read', h: 1, len: 100, pos: null },
      { c: 'write', h: 1, data: enc('x'), pos: null },
      { c: 'ftruncate', h: 1, len: 2 },
      { c: 'ftruncate', h: 0, len: 4 },
      { c: 'ftruncate', h: 0, len: 20 },
      { c: 'open', p: 'a', flags: 'a' },
      { c: 'write', h: 2, data: enc('tail'), pos: 0 },
      { c: 'read', h: 2, len: 3, pos: 0 },
      { c: 'open', p: 'd', flags: 'r' },
      { c: 'fsync', h: 3 },
      { c: 'read', h: 3, len: 1, pos: null },
      { c: 'write', h: 3, data: enc('x'), pos: null },
      { c: 'ftruncate', h: 3, len: 0 },
      { c: 'fstat', h: 3 },
      { c: 'open', p: 'd', flags: 'w' },
      { c: 'open', p: 'd', flags: 'wx' },
      { c: 'open', p: 'g', flags: 'r' },
      { c: 'open', p: 'g', flags: 'r+' },
      { c: 'open', p: 'a/x', flags: 'w' },
      { c: 'open', p: 'd/a/x' as string, flags: 'w' },
      { c: 'link', p: 'a', q: 'b' },
      { c: 'link', p: 'a', q: 'b' },
      { c: 'link', p: 'd', q: 'g' },
      { c: 'rename', p: 'a', q: 'b' },
      { c: 'rename', p: 'a', q: 'd' },
      { c: 'rename', p: 'd', q: 'a' },
      { c: 'rename', p: 'd', q: 'd/e' },
      { c: 'rename', p: 'd/e/f', q: 'd' },
      { c: 'rename', p: 'g', q: 'b' },
      { c: 'rename', p: 'b', q: 'g' },
      { c: 'rmdir', p: 'd' },
      { c: 'rmdir', p: 'g' },
      { c: 'unlink', p: 'd' },
      { c: 'unlink', p: 'a/x' },
      { c: 'mkdir', p: 'a', rec: true },
      { c: 'mkdir', p: 'a/x', rec: true },
      { c: 'readdir', p: 'a' },
      { c: 'readdir', p: 'g' },
      { c: 'readFile', p: 'd' },
      { c: 'readFile', p: 'g' },
      { c: 'stat', p: 'a/x' },
      { c: 'rmdir', p: 'd/e/f' },
      { c: 'rename', p: 'd/e', q: 'a' },
      { c: 'unlink', p: 'a' },
      { c: 'rename', p: 'd/e', q: 'a' },
      { c: 'readdir', p: 'd' },
    ];
    const real = tmpDir('raftsnap-simfs-');
    const sim = new SimFs();
    sim.mkdir('/r');
    const want = runCmds(nodeFs, real, cmds);
    expect(runCmds(sim, '/r', cmds)).toEqual(want);
    expect(tree(sim, '/r')).toEqual(tree(nodeFs, real));
    expect(want.filter((x) => x.startsWith('error')).length).toBeGreaterThan(20); // the sequence exercises the errors
  });

  it('on random sequences of calls (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (cmds) => {
        const real = tmpDir('raftsnap-simfs-');
        const sim = new SimFs();
        sim.mkdir('/r');
        expect(runCmds(sim, '/r', cmds)).toEqual(runCmds(nodeFs, real, cmds));
        expect(tree(sim, '/r')).toEqual(tree(nodeFs, real));
      }),
      { numRuns: 150 },
    );
  });

  it('fails an empty path, a trailing slash on a file, a bad fd and out-of-range buffers as node:fs does', () => {
    const real = tmpDir('raftsnap-simfs-');
    const sim = new SimFs();
    sim.mkdir('/r');
    for (const [fs, root] of [
      [sim, '/r'],
      [nodeFs, real],
    ] as const) {
      putFile(fs, `${root}/f`, 'x');
      expect(code(() => fs.open('', 'r'))).toBe('ENOENT');
      expect(code(() => fs.open(`${root}/f/`, 'r'))).toBe('ENOTDIR');
      expect(code(() => fs.stat(`${root}/f/`))).toBe('ENOTDIR');
      expect(code(() => fs.close(12345))).toBe('EBADF');
      expect(code(() => fs.fsync(12345))).toBe('EBADF');
      const fd = fs.open(`${root}/f`, 'r+');
      expect(() => fs.write(fd, new Uint8Array(4), 2, 3)).toThrow(RangeError);
      fs.close(fd);
      expect(code(() => fs.fstat(fd))).toBe('EBADF');
    }
    expect(code(() => sim.rmdir('/'))).toBe('EBUSY');
    expect(code(() => sim.rename('/', '/x'))).toBe('EBUSY');
  });
});

// ---------------------------------------------------------------------------------------------
// Crashes

describe('SimFs crashes', () => {
  it('a clean crash drops unsynced bytes and keeps synced ones', () => {
    const fs = new SimFs();
    putFile(fs, '/a', 'synced');
    fsyncDir(fs, '/');
    const fd = fs.open('/a', 'a');
    writeAll(fs, fd, enc(' and more'));
    expect(dec(fs.readFile('/a'))).toBe('synced and more');
    fs.crash('clean');
    expect(dec(fs.readFile('/a'))).toBe('synced');
    expect(code(() => fs.write(fd, enc('x'), 0, 1))).toBe('EBADF');
  });

  it("an 'all' crash keeps everything written", () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    putFile(fs, '/d/a', 'never synced', false);
    fs.crash('all');
    expect(text(fs.dump())).toEqual({ '/d': 'dir', '/d/a': 'never synced' });
  });

  it('a file whose directory was not fsynced vanishes; with the directory fsynced, its unsynced bytes do', () => {
    const fs = new SimFs();
    putFile(fs, '/a', 'data');
    fs.crash('clean');
    expect(code(() => fs.stat('/a'))).toBe('ENOENT');

    putFile(fs, '/b', 'data', false);
    fsyncDir(fs, '/');
    fs.crash('clean');
    expect(dec(fs.readFile('/b'))).toBe('');
  });

  it('a rename without the directory fsync is undone: the old target comes back', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    fsyncDir(fs, '/');
    putFile(fs, '/d/x', 'old');
    fsyncDir(fs, '/d');
    putFile(fs, '/d/x.tmp', 'new'); // fsynced, but its name is not
    fs.rename('/d/x.tmp', '/d/x');
    expect(dec(fs.readFile('/d/x'))).toBe('new');

    const c = fs.clone();
    c.crash('clean');
    expect(text(c.dump())).toEqual({ '/d': 'dir', '/d/x': 'old' });

    fsyncDir(fs, '/d');
    fs.crash('clean');
    expect(text(fs.dump())).toEqual({ '/d': 'dir', '/d/x': 'new' });
  });

  it('an unlink, an ftruncate and a mkdir not made durable are undone', () => {
    const fs = new SimFs();
    putFile(fs, '/a', 'abcdef');
    fsyncDir(fs, '/');
    const fd = fs.open('/a', 'r+');
    fs.ftruncate(fd, 2);
    fs.close(fd);
    fs.unlink('/a');
    fs.mkdir('/d');
    fs.crash('clean');
    expect(text(fs.dump())).toEqual({ '/a': 'abcdef' });
  });

  it('durable directory operations are kept in order: an fsync of the directory makes everything before it durable', () => {
    const fs = new SimFs();
    putFile(fs, '/a', '1');
    putFile(fs, '/b', '2');
    fs.unlink('/a');
    fsyncDir(fs, '/');
    fs.crash('clean');
    expect(text(fs.dump())).toEqual({ '/b': '2' });
  });

  it('a random crash keeps, for each directory, a prefix of its pending operations', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const seen = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) {
      const fs = new SimFs();
      for (const n of names) putFile(fs, `/${n}`, n);
      fs.crash(new Random(seed));
      const kept = fs.readdir('/').sort().join('');
      expect(names.join('').startsWith(kept)).toBe(true);
      seen.add(kept);
    }
    expect(seen.size).toBe(names.length + 1);
  });

  it('a rename between two directories is kept in both or in neither', () => {
    const fs = new SimFs();
    fs.mkdir('/a');
    fs.mkdir('/b');
    putFile(fs, '/a/x', 'x');
    fsyncDir(fs, '/a');
    fsyncDir(fs, '/');
    fs.rename('/a/x', '/b/x');
    const places = new Set<string>();
    for (let seed = 1; seed <= 100; seed++) {
      const c = fs.clone();
      c.crash(new Random(seed));
      const where = [...c.dump().keys()].filter((p) => p.endsWith('/x'));
      expect(where).toHaveLength(1);
      places.add(where[0]!);
    }
    expect([...places].sort()).toEqual(['/a/x', '/b/x']);
    // Making either directory durable makes the rename durable.
    const viaSource = fs.clone();
    fsyncDir(viaSource, '/a');
    viaSource.crash('clean');
    expect(viaSource.readdir('/b')).toEqual(['x']);
  });

  it('keeps a prefix of the unsynced bytes at sector granularity, possibly garbling the last kept piece (fast-check)', () => {
    type Op = { t: 'w'; off: number; data: Uint8Array } | { t: 't'; len: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant('w' as const), off: fc.nat({ max: 3000 }), data: fc.uint8Array({ minLength: 1, maxLength: 1500 }) }) },
      fc.record({ t: fc.constant('t' as const), len: fc.nat({ max: 3000 }) }),
    );
    // The reference: split each write at absolute sector boundaries, apply k pieces.
    const piecesOf = (ops: Op[]) => {
      const out: Array<{ op: Op; end: number; start: number }> = [];
      for (const op of ops) {
        if (op.t === 't') out.push({ op, start: 0, end: 0 });
        else {
          let s = op.off;
          while (s < op.off + op.data.length) {
            const e = Math.min(op.off + op.data.length, (Math.floor(s / SECTOR_BYTES) + 1) * SECTOR_BYTES);
            out.push({ op, start: s, end: e });
            s = e;
          }
        }
      }
      return out;
    };
    const apply = (base: number[], ps: ReturnType<typeof piecesOf>, k: number) => {
      const b = base.slice();
      for (const p of ps.slice(0, k)) {
        if (p.op.t === 't') {
          b.length = Math.min(b.length, p.op.len);
          while (b.length < p.op.len) b.push(0);
        } else {
          while (b.length < p.start) b.push(0);
          for (let i = p.start; i < p.end; i++) b[i] = p.op.data[i - p.op.off]!;
        }
      }
      return b;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(opArb, { maxLength: 8 }), fc.integer(), (initial, ops, seed) => {
        const fs = new SimFs();
        const fd = fs.open('/f', 'w');
        writeAll(fs, fd, initial);
        fs.fsync(fd);
        fsyncDir(fs, '/');
        for (const op of ops) {
          if (op.t === 'w') expect(fs.write(fd, op.data, 0, op.data.length, op.off)).toBe(op.data.length);
          else fs.ftruncate(fd, op.len);
        }
        fs.crash(new Random(seed), { garble: 0.5 });
        const got = Array.from(fs.readFile('/f'));
        const ps = piecesOf(ops);
        const base = Array.from(initial);
        let matched = false;
        for (let k = 0; k <= ps.length && !matched; k++) {
          const want = apply(base, ps, k);
          if (want.length !== got.length) continue;
          const last = k > 0 && ps[k - 1]!.op.t === 'w' ? ps[k - 1]! : null;
          matched = want.every((v, i) => v === got[i] || (last !== null && i >= last.start && i < last.end));
        }
        expect(matched).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('garbles only bytes the last kept piece wrote, never durable ones', () => {
    let garbled = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const fs = new SimFs();
      const fd = fs.open('/f', 'w');
      writeAll(fs, fd, new Uint8Array(700).fill(7));
      fs.fsync(fd);
      fsyncDir(fs, '/');
      writeAll(fs, fd, new Uint8Array(1000).fill(9)); // pieces [700,1024) [1024,1536) [1536,1700)
      fs.crash(new Random(seed), { garble: 1, garbage: 'zeros' });
      const got = fs.readFile('/f');
      expect(got.subarray(0, 700).every((b) => b === 7)).toBe(true);
      if (got.length > 700 && got[got.length - 1] === 0) garbled++;
    }
    expect(garbled).toBeGreaterThan(30);
  });

  it('after a failed fsync the unsynced bytes are in doubt, and a later fsync that succeeds does not bring them back', () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) {
      const fs = new SimFs({ rng: new Random(seed), crash: { garble: 0 } });
      putFile(fs, '/f', 'd'.repeat(SECTOR_BYTES));
      fsyncDir(fs, '/');
      const fd = fs.open('/f', 'a');
      for (let i = 0; i < 4; i++) writeAll(fs, fd, new Uint8Array(SECTOR_BYTES).fill(65 + i));
      fs.addFault({ kind: 'fsync', nth: 1 });
      expect(code(() => fs.fsync(fd))).toBe('EIO');
      expect(fs.readFile('/f').length).toBe(5 * SECTOR_BYTES); // the page cache still shows them
      const after = fs.durableDump().get('/f')!;
      fs.fsync(fd); // succeeds now, but does not write the lost pages again
      expect(Buffer.compare(fs.durableDump().get('/f')!, after)).toBe(0);
      expect(after.length % SECTOR_BYTES).toBe(0);
      outcomes.add(String(after.length));
    }
    expect(outcomes.size).toBeGreaterThan(2);
  });

  it("after a failed fsync, an 'all' crash keeps what was pending, not what only the page cache shows", () => {
    const fs = new SimFs({ rng: new Random(3), crash: { garble: 0 } }); // seed 3: one of the two sectors reaches the disk
    putFile(fs, '/f', '');
    fsyncDir(fs, '/');
    const fd = fs.open('/f', 'a');
    writeAll(fs, fd, new Uint8Array(2 * SECTOR_BYTES).fill(1));
    fs.addFault({ kind: 'fsync', nth: 1 });
    expect(code(() => fs.fsync(fd))).toBe('EIO');
    const kept = fs.durableDump().get('/f')!.length;
    expect(kept).toBe(SECTOR_BYTES);
    writeAll(fs, fd, new Uint8Array(10).fill(2));
    const all = fs.clone();
    all.crash('all');
    const got = all.readFile('/f');
    expect(got.length).toBe(2 * SECTOR_BYTES + 10);
    expect(got.subarray(2 * SECTOR_BYTES).every((b) => b === 2)).toBe(true);
    expect(got.subarray(kept, 2 * SECTOR_BYTES).every((b) => b === 0)).toBe(true); // lost: a hole now
    const states = fs.crashStates({ garbage: 'none' }).states.map((s) => s.fs.readFile('/f'));
    expect(states.map((b) => b.length)).toEqual([kept, 2 * SECTOR_BYTES + 10]);
    expect(Buffer.compare(states[1]!, got)).toBe(0);
  });

  it('clones are independent (copy on write)', () => {
    const fs = new SimFs();
    putFile(fs, '/a', 'one');
    const c = fs.clone();
    putFile(c, '/a', 'two');
    c.mkdir('/d');
    expect(text(fs.dump())).toEqual({ '/a': 'one' });
    expect(text(c.dump())).toEqual({ '/a': 'two', '/d': 'dir' });
    fs.crash('all');
    expect(dec(c.readFile('/a'))).toBe('two');
  });
});

// ---------------------------------------------------------------------------------------------
// Faults

describe('SimFs faults', () => {
  it('fails the nth call of a kind', () => {
    const fs = new SimFs();
    const h = fs.addFault({ kind: 'fsync', nth: 3, error: 'EIO' });
    const fd = fs.open('/f', 'w');
    const results = [1, 2, 3, 4, 5].map(() => code(() => fs.fsync(fd)));
    expect(results).toEqual(['ok', 'ok', 'EIO', 'ok', 'ok']);
    expect(h.seen).toBe(5);
    expect(h.fired).toBe(1);
    const e = (() => {
      const g = new SimFs();
      g.addFault({ kind: 'fsync' });
      try {
        g.fsync(g.open('/x', 'w'));
      } catch (err) {
        return err as NodeJS.ErrnoException;
      }
      return null;
    })();
    expect(e?.code).toBe('EIO');
    expect(e?.syscall).toBe('fsync');
    expect(e?.path).toBe('/x');
    expect(fs.trace.filter((t) => t.kind === 'fsync').map((t) => t.error ?? 'ok')).toEqual(['ok', 'ok', 'EIO', 'ok', 'ok']);
  });

  it('fails from the nth call on when times is unlimited, and stops when the rule is removed', () => {
    const fs = new SimFs();
    const h = fs.addFault({ kind: ['write', 'fsync'], nth: 2, times: Infinity, error: 'EROFS' });
    const fd = fs.open('/f', 'w');
    expect([code(() => fs.write(fd, enc('a'), 0, 1)), code(() => fs.fsync(fd)), code(() => fs.write(fd, enc('b'), 0, 1))]).toEqual(['ok', 'EROFS', 'EROFS']);
    h.remove();
    expect(code(() => fs.fsync(fd))).toBe('ok');
  });

  it('fails calls on a path pattern', () => {
    const fs = new SimFs();
    fs.mkdir('/data/wal', { recursive: true });
    fs.mkdir('/data/wal2');
    fs.addFault({ path: /\.wal$/, error: 'EIO' });
    fs.addFault({ path: '/data/wal', error: 'ENOSPC' });
    expect(code(() => fs.open('/data/x.wal', 'w'))).toBe('EIO');
    expect(code(() => fs.open('/data/wal/seg', 'w'))).toBe('ENOSPC');
    expect(code(() => fs.open('/data/wal2/seg', 'w'))).toBe('ok');
    expect(code(() => fs.rename('/data/wal2/seg', '/data/wal/seg'))).toBe('ENOSPC'); // either path of a rename
    expect(code(() => fs.readdir('/data/wal'))).toBe('ok'); // only mutating calls unless kind says otherwise
    fs.addFault({ kind: 'readdir', path: '/data/wal' });
    expect(code(() => fs.readdir('/data/wal'))).toBe('EIO');
    fs.addFault({ path: /\.log$/g, error: 'EROFS' }); // a global RegExp keeps no state between calls
    expect([code(() => fs.open('/data/a.log', 'w')), code(() => fs.open('/data/a.log', 'w'))]).toEqual(['EROFS', 'EROFS']);
  });

  it('fails calls with a seeded probability', () => {
    const failures = (seed: number) => {
      const fs = new SimFs({ rng: new Random(seed) });
      fs.addFault({ kind: 'write', probability: 0.3 });
      const fd = fs.open('/f', 'w');
      const out: number[] = [];
      for (let i = 0; i < 1000; i++) if (code(() => fs.write(fd, enc('x'), 0, 1)) === 'EIO') out.push(i);
      return out;
    };
    const a = failures(7);
    expect(failures(7)).toEqual(a);
    expect(failures(8)).not.toEqual(a);
    expect(a.length).toBeGreaterThan(230);
    expect(a.length).toBeLessThan(370);
  });

  it('makes a write short when asked', () => {
    const fs = new SimFs({ rng: new Random(3) });
    fs.addFault({ kind: 'write', nth: 1, shortWrite: true });
    const fd = fs.open('/f', 'w');
    const n = fs.write(fd, enc('0123456789'), 0, 10);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(10);
    expect(dec(fs.readFile('/f'))).toBe('0123456789'.slice(0, n));
    expect(() => fs.addFault({ kind: 'fsync', shortWrite: true })).toThrow(RangeError);
  });

  it('a capacity limit gives a short write, then ENOSPC; space comes back when a file goes', () => {
    const fs = new SimFs();
    fs.setCapacity({ bytes: 1000 });
    putFile(fs, '/old', 'x'.repeat(300));
    const fd = fs.open('/f', 'w');
    expect(fs.write(fd, new Uint8Array(500), 0, 500)).toBe(500);
    expect(fs.write(fd, new Uint8Array(500), 0, 500)).toBe(200);
    expect(fs.usedBytes).toBe(1000);
    expect(code(() => fs.write(fd, new Uint8Array(1), 0, 1))).toBe('ENOSPC');
    expect(fs.write(fd, new Uint8Array(10), 0, 10, 0)).toBe(10); // overwriting needs no space
    fs.unlink('/old');
    expect(fs.write(fd, new Uint8Array(500), 0, 500)).toBe(300);
    expect(fs.trace.at(-1)?.error).toBeUndefined();

    const g = new SimFs();
    g.setCapacity({ bytes: 100, shortWrites: false });
    const gd = g.open('/f', 'w');
    expect(code(() => g.write(gd, new Uint8Array(101), 0, 101))).toBe('ENOSPC');
    expect(g.trace.at(-1)?.error).toBe('ENOSPC');
    expect(g.readFile('/f').length).toBe(0);
  });

  it('an inode limit fails creating files and directories with ENOSPC', () => {
    const fs = new SimFs();
    fs.setCapacity({ inodes: 3 }); // the root and two more
    fs.mkdir('/d');
    fs.close(fs.open('/d/a', 'w'));
    expect(code(() => fs.open('/d/b', 'w'))).toBe('ENOSPC');
    expect(code(() => fs.mkdir('/e'))).toBe('ENOSPC');
    fs.unlink('/d/a');
    expect(code(() => fs.open('/d/b', 'w'))).toBe('ok');
  });

  it('read-only: EROFS on every mutating call, reads still work', () => {
    const fs = new SimFs();
    putFile(fs, '/a', 'abc');
    fs.mkdir('/d');
    const fd = fs.open('/a', 'r+');
    fs.setReadOnly(true);
    const calls: Array<[string, () => unknown]> = [
      ['open w', () => fs.open('/a', 'w')],
      ['open wx', () => fs.open('/n', 'wx')],
      ['open a', () => fs.open('/a', 'a')],
      ['open r+', () => fs.open('/a', 'r+')],
      ['write', () => fs.write(fd, enc('x'), 0, 1)],
      ['fsync', () => fs.fsync(fd)],
      ['ftruncate', () => fs.ftruncate(fd, 0)],
      ['rename', () => fs.rename('/a', '/b')],
      ['link', () => fs.link('/a', '/b')],
      ['unlink', () => fs.unlink('/a')],
      ['rmdir', () => fs.rmdir('/d')],
      ['mkdir', () => fs.mkdir('/e')],
      ['access write', () => fs.access('/a', 'write')],
    ];
    for (const [name, f] of calls) expect([name, code(f)]).toEqual([name, 'EROFS']);
    expect(dec(fs.readFile('/a'))).toBe('abc');
    expect(fs.readdir('/').sort()).toEqual(['a', 'd']);
    expect(code(() => fs.access('/a', 'read'))).toBe('ok');
    const r = fs.open('/a', 'r');
    expect(fs.read(r, new Uint8Array(3), 0, 3, 0)).toBe(3);
    fs.setReadOnly(false);
    expect(code(() => fs.write(fd, enc('x'), 0, 1))).toBe('ok');
  });
});

// ---------------------------------------------------------------------------------------------
// Trace and crash points

describe('SimFs trace and crash points', () => {
  it('records every mutating call with its number', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    writeAtomic(fs, '/d/x', 'hello');
    fs.readFile('/d/x');
    expect(fs.calls).toBe(6);
    expect(fs.trace.map((t) => [t.n, t.kind, t.path, t.to ?? t.bytes ?? t.flags ?? ''])).toEqual([
      [1, 'mkdir', '/d', ''],
      [2, 'open', '/d/x.tmp', 'wx'],
      [3, 'write', '/d/x.tmp', 5],
      [4, 'fsync', '/d/x.tmp', ''],
      [5, 'rename', '/d/x.tmp', '/d/x'],
      [6, 'fsync', '/d', ''],
    ]);
    expect(fs.trace[2]!.fd).toBe(fs.trace[3]!.fd);
  });

  it('crash after call k: call k+1 throws SimCrash, every later call too, until crash()', () => {
    const base = new SimFs();
    base.mkdir('/d');
    fsyncDir(base, '/');
    writeAtomic(base, '/d/x', 'old');
    const before = base.calls;
    const dry = base.clone();
    writeAtomic(dry, '/d/x', 'new');
    const n = dry.calls - before; // mutating calls of one atomic write
    expect(n).toBe(5);
    for (let k = 0; k <= n; k++) {
      const fs = base.clone();
      fs.armCrashAfter(before + k);
      let thrown: unknown = null;
      try {
        writeAtomic(fs, '/d/x', 'new');
      } catch (e) {
        thrown = e;
      }
      if (k < n) {
        expect(thrown).toBeInstanceOf(SimCrash);
        expect((thrown as SimCrash).call).toBe(before + k + 1);
        expect(fs.halted).toBe(true);
        expect(() => fs.stat('/d')).toThrow(SimCrash);
        expect(fs.calls).toBe(before + k + 1); // calls after the crash are not counted
      } else expect(thrown).toBeNull();
      for (let seed = 1; seed <= 20; seed++) {
        const c = fs.clone();
        c.crash(new Random(seed));
        expect(c.halted).toBe(false);
        // The atomic write: the old or the new content, never anything else; new once the directory fsync ran.
        const got = dec(c.readFile('/d/x'));
        expect(k === n ? ['new'] : ['old', 'new']).toContain(got);
      }
    }
  });

  it('onCall can stop the process at a chosen call, and isSimCrash sees through wrapping errors', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    const seen: string[] = [];
    fs.onCall = (n, kind, p) => {
      seen.push(`${n} ${kind} ${p}`);
      if (kind === 'rename') throw new SimCrash(n, kind, p);
    };
    let err: unknown;
    try {
      writeAtomic(fs, '/d/x', 'v');
    } catch (e) {
      err = fsError(e, '/d/x', 'write');
    }
    expect(isSimCrash(err)).toBe(true);
    expect(isSimCrash(new Error('other'))).toBe(false);
    expect(seen).toEqual(['2 open /d/x.tmp', '3 write /d/x.tmp', '4 fsync /d/x.tmp', '5 rename /d/x.tmp']);
    fs.crash('all');
    expect(fs.readdir('/d')).toEqual(['x.tmp']);
  });
});

// ---------------------------------------------------------------------------------------------
// Enumeration of crash states

describe('SimFs crash-state enumeration', () => {
  it('a created file with three pending writes: 1 state without its name, 5 with it', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    fsyncDir(fs, '/');
    const fd = fs.open('/d/f', 'wx');
    for (const s of ['a'.repeat(100), 'b'.repeat(100), 'c'.repeat(100)]) writeAll(fs, fd, enc(s));
    const r = fs.crashStates();
    expect(r.sampled).toBe(false);
    expect(r.total).toBe(6);
    expect(r.states.map((s) => s.label)).toEqual([
      '/d: 0/1 ops',
      '/d: 1/1 ops; /d/f: 0/3 pieces',
      '/d: 1/1 ops; /d/f: 1/3 pieces',
      '/d: 1/1 ops; /d/f: 2/3 pieces',
      '/d: 1/1 ops; /d/f: 3/3 pieces',
      '/d: 1/1 ops; /d/f: 3/3 pieces, last garbled',
    ]);
    const sizes = r.states.map((s) => s.fs.dump().get('/d/f')?.length ?? -1);
    expect(sizes).toEqual([-1, 0, 100, 200, 300, 300]);
    const garbled = r.states[5]!.fs.readFile('/d/f');
    expect(dec(garbled.subarray(0, 200))).toBe('a'.repeat(100) + 'b'.repeat(100));
    expect(dec(garbled.subarray(200))).not.toBe('c'.repeat(100));
    // The states are independent file systems without pending state.
    const s1 = r.states[4]!.fs;
    putFile(s1, '/d/f', 'changed');
    expect(dec(r.states[3]!.fs.readFile('/d/f'))).toBe('a'.repeat(100) + 'b'.repeat(100));
    expect(fs.readFile('/d/f').length).toBe(300);
    const again = r.states[3]!.fs;
    again.crash('clean');
    expect(again.readFile('/d/f').length).toBe(200);
  });

  it('a multi-sector write adds a cut half-way through it; every-sector enumerates each prefix', () => {
    const fs = new SimFs();
    putFile(fs, '/f', '');
    fsyncDir(fs, '/');
    const fd = fs.open('/f', 'a');
    writeAll(fs, fd, new Uint8Array(1500).fill(1)); // pieces [0,512) [512,1024) [1024,1500)
    expect(fs.crashStates().states.map((s) => s.fs.readFile('/f').length)).toEqual([0, 512, 1500, 1500]);
    expect(fs.crashStates({ cuts: 'every-sector', garbage: 'none' }).states.map((s) => s.fs.readFile('/f').length)).toEqual([0, 512, 1024, 1500]);
    const zeroed = fs.crashStates({ garbage: 'zeros' }).states[3]!.fs.readFile('/f');
    expect(zeroed.subarray(0, 1024).every((b) => b === 1) && zeroed.subarray(1024).every((b) => b === 0)).toBe(true);
  });

  it('directories combine independently; one that cannot be reached does not multiply the states', () => {
    const two = new SimFs();
    two.mkdir('/a');
    two.mkdir('/b');
    fsyncDir(two, '/');
    two.close(two.open('/a/x', 'w'));
    two.close(two.open('/b/y', 'w'));
    expect(two.crashStates().total).toBe(4);

    const nested = new SimFs();
    nested.mkdir('/p/q', { recursive: true });
    nested.close(nested.open('/p/q/f', 'w'));
    const r = nested.crashStates();
    expect(r.total).toBe(4); // not 2 * 2 * 2
    expect(r.states.map((s) => [...s.fs.dump().keys()].join(' '))).toEqual(['', '/p', '/p /p/q', '/p /p/q /p/q/f']);
  });

  it('a rename between two directories gives two states, the file in exactly one place in each', () => {
    const fs = new SimFs();
    fs.mkdir('/a');
    fs.mkdir('/b');
    putFile(fs, '/a/x', 'x');
    fsyncDir(fs, '/a');
    fsyncDir(fs, '/');
    fs.rename('/a/x', '/b/x');
    const r = fs.crashStates();
    expect(r.total).toBe(2);
    expect(r.states.map((s) => [...s.fs.dump().keys()].filter((p) => p.endsWith('x')))).toEqual([['/a/x'], ['/b/x']]);
  });

  it('past the limit, a seeded sample that always holds the clean and the complete state', () => {
    const fs = new SimFs();
    for (let i = 0; i < 5; i++) putFile(fs, `/f${i}`, '', true);
    fsyncDir(fs, '/');
    const fds = [0, 1, 2, 3, 4].map((i) => fs.open(`/f${i}`, 'a'));
    for (let w = 0; w < 3; w++) for (const fd of fds) writeAll(fs, fd, enc(`w${w};`));
    const full = fs.crashStates({ limit: 10_000 });
    expect(full.total).toBe(5 ** 5); // per file: none, 3 boundaries, garbled
    expect(full.sampled).toBe(false);
    const r = fs.crashStates({ limit: 50, rng: new Random(9) });
    expect(r.sampled).toBe(true);
    expect(r.total).toBe(5 ** 5);
    expect(r.states).toHaveLength(50);
    const labels = r.states.map((s) => s.label);
    expect(new Set(labels).size).toBe(50);
    expect(text(r.states[0]!.fs.dump())).toEqual(text(fs.durableDump()));
    const all = fs.clone();
    all.crash('all');
    expect(r.states.some((s) => JSON.stringify(text(s.fs.dump())) === JSON.stringify(text(all.dump())))).toBe(true);
    expect(fs.crashStates({ limit: 50, rng: new Random(9) }).states.map((s) => s.label)).toEqual(labels);
  });

  it('enumerating from onCall in one run gives the states of a crash armed after each call', () => {
    const setup = () => {
      const fs = new SimFs();
      fs.mkdir('/d');
      fsyncDir(fs, '/');
      writeAtomic(fs, '/d/x', 'old');
      return fs;
    };
    const key = (r: ReturnType<SimFs['crashStates']>) => r.states.map((s) => `${s.label} => ${JSON.stringify(text(s.fs.dump()))}`);
    const oneRun = setup();
    const first = oneRun.calls;
    const viaHook: string[][] = [];
    oneRun.onCall = () => viaHook.push(key(oneRun.crashStates()));
    writeAtomic(oneRun, '/d/x', 'new');
    oneRun.onCall = null;
    viaHook.push(key(oneRun.crashStates())); // after the last call
    const viaArm: string[][] = [];
    for (let k = first; k <= oneRun.calls; k++) {
      const fs = setup();
      fs.armCrashAfter(k);
      try {
        writeAtomic(fs, '/d/x', 'new');
      } catch (e) {
        expect(e).toBeInstanceOf(SimCrash);
      }
      viaArm.push(key(fs.crashStates()));
    }
    expect(viaHook).toEqual(viaArm);
    // Every state of every crash point holds the old or the new value, and the new one once the rename is durable.
    const values = viaHook.flat().map((s) => JSON.parse(s.split(' => ')[1]!)['/d/x']);
    expect(new Set(values)).toEqual(new Set(['old', 'new']));
    // Before open: nothing pending. After open: tmp's name kept or not. After write: without the name, or
    // with 0 or 1 piece or the piece garbled. After fsync: the name or not. After rename: neither
    // operation, the create only, both. After the directory fsync: nothing pending.
    expect(viaHook.map((states) => states.length)).toEqual([1, 2, 4, 2, 3, 1]);
  });

  it('nothing pending: one state, the current one', () => {
    const fs = new SimFs();
    writeAtomic(fs, '/x', 'v');
    const r = fs.crashStates();
    expect(r.total).toBe(1);
    expect(r.states[0]!.label).toBe('nothing pending');
    expect(text(r.states[0]!.fs.dump())).toEqual({ '/x': 'v' });
  });
});
