import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemFs, nodeFs, type FileSystem, type OpenFlags } from '../../src/storage/index.js';
import { tmpDir } from './helpers.js';

function code(f: () => unknown): string {
  try {
    f();
    return 'OK';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

describe('MemFs', () => {
  it('creates, writes at positions, appends, truncates and reads back', () => {
    const m = new MemFs();
    m.mkdir('/d');
    const fd = m.open('/d/f', 'wx');
    expect(m.write(fd, Buffer.from('hello'), 0, 5)).toBe(5);
    expect(m.write(fd, Buffer.from('XY'), 0, 2, 1)).toBe(2); // positional: the position stays at 5
    expect(m.write(fd, Buffer.from('!'), 0, 1)).toBe(1);
    m.fsync(fd);
    m.close(fd);
    expect(m.readFile('/d/f').toString()).toBe('hXYlo!');
    const a = m.open('/d/f', 'a');
    m.write(a, Buffer.from('++'), 0, 2, 0); // 'a' always writes at the end
    m.close(a);
    expect(m.readFile('/d/f').toString()).toBe('hXYlo!++');
    const rw = m.open('/d/f', 'r+');
    m.ftruncate(rw, 3);
    const buf = Buffer.alloc(10);
    expect(m.read(rw, buf, 0, 10, 0)).toBe(3);
    m.ftruncate(rw, 5);
    expect(m.read(rw, buf, 0, 10, 0)).toBe(5);
    expect([...buf.subarray(3, 5)]).toEqual([0, 0]);
    expect(m.fstat(rw).size).toBe(5);
    m.close(rw);
    expect(m.stat('/d/f').isFile()).toBe(true);
    expect(m.stat('/d').isDirectory()).toBe(true);
    expect(m.openCount).toBe(0);
  });

  it('a write past the end fills the hole with zeros', () => {
    const m = new MemFs();
    const fd = m.open('/f', 'w');
    m.write(fd, Buffer.from('ab'), 0, 2, 6);
    m.close(fd);
    expect([...m.readFile('/f')]).toEqual([0, 0, 0, 0, 0, 0, 97, 98]);
  });

  it('renames atomically over a file; an open descriptor keeps its file after unlink or rename over it', () => {
    const m = new MemFs();
    m.close(m.open('/old', 'w'));
    const fd = m.open('/old', 'r+');
    m.write(fd, Buffer.from('old'), 0, 3);
    const t = m.open('/new.tmp', 'wx');
    m.write(t, Buffer.from('new'), 0, 3);
    m.close(t);
    m.rename('/new.tmp', '/old');
    expect(m.readFile('/old').toString()).toBe('new');
    const buf = Buffer.alloc(3);
    expect(m.read(fd, buf, 0, 3, 0)).toBe(3);
    expect(buf.toString()).toBe('old');
    m.close(fd);
    expect(m.readdir('/').sort()).toEqual(['old']);
  });

  it('hard links share the file; link refuses an existing name', () => {
    const m = new MemFs();
    m.close(m.open('/a', 'w'));
    m.link('/a', '/b');
    expect(code(() => m.link('/a', '/b'))).toBe('EEXIST');
    const fd = m.open('/b', 'a');
    m.write(fd, Buffer.from('x'), 0, 1);
    m.close(fd);
    expect(m.readFile('/a').toString()).toBe('x');
    m.unlink('/a');
    expect(m.readFile('/b').toString()).toBe('x');
  });

  it('renames directories with their contents', () => {
    const m = new MemFs();
    m.mkdir('/x/y/z', { recursive: true });
    m.close(m.open('/x/y/z/f', 'w'));
    m.rename('/x/y', '/w');
    expect(m.readdir('/w/z')).toEqual(['f']);
    expect(code(() => m.stat('/x/y'))).toBe('ENOENT');
    expect(code(() => m.rename('/w', '/w/z/inside'))).toBe('EINVAL');
  });

  it('fails as POSIX does', () => {
    const m = new MemFs();
    m.mkdir('/d');
    m.close(m.open('/d/f', 'w'));
    expect(code(() => m.open('/nope/f', 'w'))).toBe('ENOENT');
    expect(code(() => m.open('/d/g', 'r'))).toBe('ENOENT');
    expect(code(() => m.open('/d/f', 'wx'))).toBe('EEXIST');
    expect(code(() => m.open('/d', 'w'))).toBe('EISDIR');
    expect(code(() => m.open('/d/f/x', 'w'))).toBe('ENOTDIR');
    expect(code(() => m.readdir('/d/f'))).toBe('ENOTDIR');
    expect(code(() => m.unlink('/d'))).toBe('EISDIR');
    expect(code(() => m.rmdir('/d'))).toBe('ENOTEMPTY');
    expect(code(() => m.rmdir('/d/f'))).toBe('ENOTDIR');
    expect(code(() => m.mkdir('/d'))).toBe('EEXIST');
    expect(code(() => m.mkdir('/d', { recursive: true }))).toBe('OK');
    expect(code(() => m.rename('/d/f', '/d'))).toBe('EISDIR');
    expect(code(() => m.readFile('/d'))).toBe('EISDIR');
    const r = m.open('/d/f', 'r');
    expect(code(() => m.write(r, Buffer.from('x'), 0, 1))).toBe('EBADF');
    m.close(r);
    expect(code(() => m.close(r))).toBe('EBADF');
    const w = m.open('/d/f', 'a');
    expect(code(() => m.read(w, Buffer.alloc(1), 0, 1, 0))).toBe('EBADF');
    m.close(w);
    const dfd = m.open('/d', 'r'); // a directory opens read-only, to fsync it
    m.fsync(dfd);
    m.close(dfd);
  });

  type Op =
    | { op: 'write'; name: number; flags: OpenFlags; data: number; at: number | null }
    | { op: 'read'; name: number; at: number }
    | { op: 'truncate'; name: number; len: number }
    | { op: 'rename'; from: number; to: number }
    | { op: 'link'; from: number; to: number }
    | { op: 'unlink'; name: number }
    | { op: 'mkdir'; name: number }
    | { op: 'rmdir'; name: number }
    | { op: 'list' }
    | { op: 'stat'; name: number };
  const name = fc.nat(4);
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('write' as const), name, flags: fc.constantFrom<OpenFlags>('r+', 'a', 'wx', 'w'), data: fc.nat(700), at: fc.option(fc.nat(900)) }),
    fc.record({ op: fc.constant('read' as const), name, at: fc.nat(900) }),
    fc.record({ op: fc.constant('truncate' as const), name, len: fc.nat(900) }),
    fc.record({ op: fc.constant('rename' as const), from: name, to: name }),
    fc.record({ op: fc.constant('link' as const), from: name, to: name }),
    fc.record({ op: fc.constant('unlink' as const), name }),
    fc.record({ op: fc.constant('mkdir' as const), name }),
    fc.record({ op: fc.constant('rmdir' as const), name }),
    fc.constant({ op: 'list' as const }),
    fc.record({ op: fc.constant('stat' as const), name }),
  );

  /** What an operation returns (a value or the error code), on one file system under `root`. */
  function run(f: FileSystem, root: string, o: Op): string {
    const p = (n: number) => path.join(root, `n${n}`);
    const result = (g: () => unknown): string => {
      try {
        return JSON.stringify(g() ?? null);
      } catch (e) {
        return (e as NodeJS.ErrnoException).code ?? 'ERR';
      }
    };
    switch (o.op) {
      case 'write':
        return result(() => {
          const fd = f.open(p(o.name), o.flags);
          try {
            const data = Buffer.alloc(o.data, o.data % 251);
            return f.write(fd, data, 0, data.length, o.at);
          } finally {
            f.close(fd);
          }
        });
      case 'read':
        return result(() => {
          const fd = f.open(p(o.name), 'r');
          try {
            const b = Buffer.alloc(64);
            const n = f.read(fd, b, 0, 64, o.at);
            return b.subarray(0, n).toString('hex');
          } finally {
            f.close(fd);
          }
        });
      case 'truncate':
        return result(() => {
          const fd = f.open(p(o.name), 'r+');
          try {
            f.ftruncate(fd, o.len);
          } finally {
            f.close(fd);
          }
        });
      case 'rename':
        return result(() => f.rename(p(o.from), p(o.to)));
      case 'link':
        return result(() => f.link(p(o.from), p(o.to)));
      case 'unlink':
        return result(() => f.unlink(p(o.name)));
      case 'mkdir':
        return result(() => f.mkdir(p(o.name)));
      case 'rmdir':
        return result(() => f.rmdir(p(o.name)));
      case 'list':
        return result(() => f.readdir(root).sort());
      case 'stat':
        return result(() => {
          const st = f.stat(p(o.name));
          return [st.isFile(), st.isDirectory(), st.isFile() ? st.size : 0, st.isFile() ? f.readFile(p(o.name)).toString('hex') : ''];
        });
    }
  }

  it('agrees with node:fs on random operation sequences (results, errors and contents)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const real = tmpDir('raftsnap-memfs-');
        const mem = new MemFs();
        mem.mkdir(real, { recursive: true });
        for (const o of ops) expect(run(mem, real, o), JSON.stringify(o)).toBe(run(nodeFs, real, o));
      }),
      { numRuns: 150 },
    );
  });
});
