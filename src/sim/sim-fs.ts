/**
 * The simulator's file system: a `FileSystem` (src/storage/fs.ts) in memory with page-cache
 * semantics, crashes, injected faults and a call trace, so that the real storage library runs in
 * the simulator. The model (docs/SIMULATION.md, "The simulated file system"):
 *
 *  - a file has durable bytes and a current view; every write or ftruncate is a pending operation
 *    until `fsync` of the file; a crash keeps the durable bytes plus a prefix of the pending
 *    operations cut at 512-byte sector pieces, the last kept piece possibly garbled;
 *  - a directory has durable entries and current entries; create, link, unlink, rename, mkdir and
 *    rmdir are pending operations of the directory holding the name until `fsync` of that directory;
 *    a crash keeps a prefix of each directory's pending operations (a rename between two
 *    directories is one operation of both, kept in both or in neither);
 *  - any call can be made to fail (EIO, ENOSPC, EROFS, or a short write) by kind, count, path or
 *    probability, by a capacity limit, or by a read-only switch;
 *  - every mutating call is counted and traced; `armCrashAfter(k)` / `onCall` stop the "process"
 *    at a chosen call with `SimCrash`, and `crashStates()` enumerates what a crash could leave.
 *
 * The byte and operation model is in sim-fs-model.ts, fault rules, trace and SimCrash in
 * sim-fs-faults.ts, post-crash states and their enumeration in sim-fs-crash.ts.
 */
import { fsFault, type FileStat, type FileSystem, type OpenFlags } from '../storage/fs.js';
import { Random } from './random.js';
import {
  absPath,
  applyOp,
  applyPrefix,
  Bytes,
  drawGarble,
  pickCut,
  totalPieces,
  ROOT_INO,
  type CrashHow,
  type CrashOptions,
  type DirNode,
  type DirOp,
  type FileNode,
  type FsNode,
  type FsState,
} from './sim-fs-model.js';
import { buildCrashState, crashStates, type CrashStates, type CrashStatesOptions } from './sim-fs-crash.js';
import { FaultSet, MUTATING_KINDS, SimCrash, type CallKind, type CapacityLimit, type FaultCode, type FaultHandle, type FaultRule, type TraceEntry } from './sim-fs-faults.js';

export { SECTOR_BYTES, type CrashHow, type CrashOptions, type Garbage } from './sim-fs-model.js';
export type { CrashState, CrashStates, CrashStatesOptions } from './sim-fs-crash.js';
export { MUTATING_KINDS, SimCrash, isSimCrash, type CallKind, type CapacityLimit, type FaultCode, type FaultHandle, type FaultRule, type TraceEntry } from './sim-fs-faults.js';

export interface SimFsOptions {
  /** Draws for probability faults, short writes and the outcome of a failed fsync (default: new Random(1)). */
  rng?: Random;
  /** Modification times (default: always 0). */
  now?: () => number;
  /** Record `trace` (default true; the counter `calls` always runs). */
  trace?: boolean;
  /** Garbling of the unknown state a failed fsync leaves (default: crash defaults). */
  crash?: CrashOptions;
}

interface OpenFile {
  ino: number;
  path: string;
  readable: boolean;
  writable: boolean;
  append: boolean;
  pos: number;
}

type Resolved = { parent: DirNode; name: string; node: FsNode | undefined; abs: string };

function statOf(n: FsNode): FileStat {
  const isFile = n.kind === 'file';
  return { size: isFile ? n.cur.len : 0, mtimeMs: n.mtimeMs, isFile: () => isFile, isDirectory: () => !isFile };
}

export class SimFs implements FileSystem {
  /** Temporary names carry this pid, not the simulator's own: a seed's trace is the same in every process. */
  readonly tempPid = 4242;
  private s: FsState;
  private fds = new Map<number, OpenFile>();
  private nextFd = 3;
  private nextOp = 1;
  private faults = new FaultSet();
  private capacity: CapacityLimit | null = null;
  private readOnly = false;
  private crashAt = 0;
  private haltedBy: SimCrash | null = null;
  private readonly rng: Random;
  private readonly now: () => number;
  private readonly traceOn: boolean;
  private readonly failOpts: CrashOptions;
  private readonly opts: SimFsOptions;
  private calls_ = 0;
  private collectAt = 64;
  private trace_: TraceEntry[] = [];
  /** Called before every mutating call with its number; may throw SimCrash to stop there. */
  onCall: ((n: number, kind: CallKind, path: string) => void) | null = null;
  /**
   * How `fsyncAsync` completes: `run` is the fsync itself, to be called later (the simulator
   * schedules it as an event of its own, dropped when the process dies first: a crash meanwhile
   * loses what it would have made durable). Null: at once, inside the call.
   */
  deferFsync: ((run: () => void) => void) | null = null;

  constructor(opts: SimFsOptions = {}, state?: FsState) {
    this.opts = opts;
    this.rng = opts.rng ?? new Random(1);
    this.now = opts.now ?? (() => 0);
    this.traceOn = opts.trace !== false;
    this.failOpts = opts.crash ?? {};
    this.s = state ?? {
      inodes: new Map([[ROOT_INO, { kind: 'dir', ino: ROOT_INO, entries: new Map(), durable: new Map(), ops: [], nlink: 1, open: 0, mtimeMs: 0 }]]),
      nextIno: ROOT_INO + 1,
    };
  }

  // ---- tracing and crash points ----

  /** Mutating calls started so far (never reset, also not by `crash`). */
  get calls(): number {
    return this.calls_;
  }

  /** The mutating calls (when tracing is on). */
  get trace(): readonly TraceEntry[] {
    return this.trace_;
  }

  /** True after a SimCrash was thrown: every call throws it again until `crash()`. */
  get halted(): boolean {
    return this.haltedBy !== null;
  }

  /** Make mutating call number k+1 throw SimCrash before it does anything (so the state is the one after call k); null disarms. */
  armCrashAfter(k: number | null): void {
    this.crashAt = k === null ? 0 : k + 1;
  }

  // ---- faults ----

  /** Add a fault rule (FaultRule); the handle counts what it matched and removes it. */
  addFault(rule: FaultRule): FaultHandle {
    return this.faults.add(rule);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Limit space (null: unlimited). Faults, capacity and the read-only switch belong to the disk: `crash()` keeps them. */
  setCapacity(limit: CapacityLimit | null): void {
    this.capacity = limit;
  }

  /** Read-only: every mutating call (and `access(_, 'write')`) fails with EROFS. */
  setReadOnly(on: boolean): void {
    this.readOnly = on;
  }

  /** Sum of the current sizes of live files (what a capacity limit counts). */
  get usedBytes(): number {
    let n = 0;
    for (const x of this.s.inodes.values()) if (x.kind === 'file' && (x.nlink > 0 || x.open > 0)) n += x.cur.len;
    return n;
  }

  private liveInodes(): number {
    let n = 0;
    for (const x of this.s.inodes.values()) if (x.nlink > 0 || x.open > 0) n++;
    return n;
  }

  // ---- crashes, states ----

  /**
   * The machine crashes: every fd becomes invalid and the state becomes one a crash can leave:
   * 'clean' keeps exactly the durable state, 'all' keeps everything written, a Random draws a
   * prefix of each file's and each directory's pending operations (docs/SIMULATION.md).
   */
  crash(how: CrashHow = 'clean', opts: CrashOptions = {}): void {
    this.s = buildCrashState(this.s, how, opts);
    this.fds.clear();
    this.haltedBy = null;
    this.crashAt = 0;
  }

  /** The distinct states a crash now could leave (all, or a sample past `limit`), each an independent SimFs. */
  crashStates(opts: CrashStatesOptions = {}): CrashStates {
    return crashStates(this.s, opts, (st) => new SimFs({ now: this.opts.now, trace: this.opts.trace }, st));
  }

  /** An independent copy: files, directories, pending operations, open fds and the call counter (not faults, hooks, capacity, read-only or the trace). */
  clone(): SimFs {
    const inodes = new Map<number, FsNode>();
    for (const [ino, n] of this.s.inodes) {
      if (n.kind === 'file') inodes.set(ino, { ...n, cur: n.cur.fork(), dur: n.dur.fork(), ops: n.ops.slice(), log: n.log.fork() });
      else inodes.set(ino, { ...n, entries: new Map(n.entries), durable: new Map(n.durable), ops: n.ops.slice() });
    }
    const c = new SimFs(this.opts, { inodes, nextIno: this.s.nextIno });
    for (const [fd, f] of this.fds) c.fds.set(fd, { ...f });
    c.nextFd = this.nextFd;
    c.nextOp = this.nextOp;
    c.calls_ = this.calls_;
    return c;
  }

  /** The current view: absolute path -> file bytes (a copy), or null for a directory; the root is left out. */
  dump(): Map<string, Uint8Array | null> {
    const out = new Map<string, Uint8Array | null>();
    const walk = (d: DirNode, prefix: string): void => {
      for (const [name, ino] of d.entries) {
        const n = this.s.inodes.get(ino)!;
        const p = `${prefix}/${name}`;
        if (n.kind === 'file') out.set(p, n.cur.view().slice());
        else {
          out.set(p, null);
          walk(n, p);
        }
      }
    };
    walk(this.dirAt(ROOT_INO), '');
    return out;
  }

  /** What a clean crash now would leave (`dump()` of it), without changing anything. */
  durableDump(): Map<string, Uint8Array | null> {
    const c = new SimFs({}, buildCrashState(this.s, 'clean', {}));
    return c.dump();
  }

  // ---- FileSystem ----

  open(p: string, flags: OpenFlags, _mode?: number): number {
    const fault = this.begin('open', p, { flags });
    if (fault !== null) throw fsFault(fault, 'open', p);
    const r = this.resolve(p, 'open');
    let node = r.node;
    if (node === undefined) {
      if (flags === 'r' || flags === 'r+') throw fsFault('ENOENT', 'open', p);
      if (p.endsWith('/')) throw fsFault('EISDIR', 'open', p);
      this.checkInodes('open', p);
      node = this.newFile();
      this.dirOp([{ dir: r.parent.ino, name: r.name, ino: node.ino }]);
    } else if (node.kind === 'dir') {
      if (flags === 'wx') throw fsFault('EEXIST', 'open', p);
      if (flags !== 'r') throw fsFault('EISDIR', 'open', p);
    } else {
      if (flags === 'wx') throw fsFault('EEXIST', 'open', p);
      if (flags === 'w') this.truncateFile(node, 0);
    }
    const fd = this.nextFd++;
    node.open++;
    this.fds.set(fd, { ino: node.ino, path: r.abs, readable: flags === 'r' || flags === 'r+', writable: flags !== 'r', append: flags === 'a', pos: 0 });
    return fd;
  }

  close(fd: number): void {
    const fault = this.begin('close', this.fdPath(fd), { fd, abs: true });
    const f = this.fd(fd, 'close');
    this.fds.delete(fd);
    this.s.inodes.get(f.ino)!.open--;
    // As on Linux, the descriptor is released even when close reports an error.
    if (fault !== null) throw fsFault(fault, 'close', f.path);
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    if (length === 0 && this.haltedBy === null) {
      checkRange(buf, offset, 0);
      return 0; // as node:fs: a zero-length read asks the system nothing, not even whether fd is valid
    }
    const fault = this.begin('read', this.fdPath(fd), { fd, abs: true });
    const f = this.fd(fd, 'read');
    if (fault !== null) throw fsFault(fault, 'read', f.path);
    checkRange(buf, offset, length);
    const n = this.s.inodes.get(f.ino)!;
    if (n.kind === 'dir') throw fsFault('EISDIR', 'read');
    if (!f.readable) throw fsFault('EBADF', 'read');
    const pos = position ?? f.pos;
    const count = Math.max(0, Math.min(length, n.cur.len - pos));
    if (count > 0) buf.set(n.cur.buf.subarray(pos, pos + count), offset);
    if (position === null) f.pos = pos + count;
    return count;
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position?: number | null): number {
    const fault = this.begin('write', this.fdPath(fd), { fd, bytes: length, position: position ?? undefined, abs: true });
    const f = this.fd(fd, 'write');
    if (fault !== null && fault !== 'short') throw fsFault(fault, 'write', f.path);
    checkRange(buf, offset, length);
    if (!f.writable) throw fsFault('EBADF', 'write');
    const n = this.s.inodes.get(f.ino) as FileNode;
    const pos = f.append ? n.cur.len : (position ?? f.pos);
    let count = length;
    if (fault === 'short') count = length <= 1 ? 0 : this.rng.range(1, length - 1);
    const cap = this.capacity?.bytes;
    if (cap !== undefined && pos + count > n.cur.len) {
      const room = cap - this.usedBytes;
      const fits = n.cur.len + Math.max(0, room) - pos;
      if (pos + count - n.cur.len > room) {
        if (fits <= 0 || this.capacity!.shortWrites === false) return this.failWrite(f.path);
        count = fits;
      }
    }
    if (count > 0) {
      const data = buf.subarray(offset, offset + count);
      n.cur.write(pos, data);
      n.ops.push({ t: 'w', off: pos, at: n.log.append(data), n: count });
      n.mtimeMs = this.now();
    }
    if (f.append) f.pos = n.cur.len;
    else if (position === null || position === undefined) f.pos = pos + count;
    return count;
  }

  private failWrite(p: string): never {
    const last = this.trace_[this.trace_.length - 1];
    if (last !== undefined && last.n === this.calls_) last.error = 'ENOSPC';
    throw fsFault('ENOSPC', 'write', p);
  }

  fsync(fd: number): void {
    const fault = this.begin('fsync', this.fdPath(fd), { fd, abs: true });
    const f = this.fd(fd, 'fsync');
    const n = this.s.inodes.get(f.ino)!;
    if (fault !== null) {
      this.failFsync(n);
      throw fsFault(fault, 'fsync', f.path);
    }
    if (n.kind === 'file') {
      for (const op of n.ops) applyOp(n.dur, op, n.log);
      n.ops = [];
      n.log.truncate(0);
    } else {
      while (n.ops.length > 0) this.commitOp(n.ops[0]!);
      // Unreachable inodes only cost memory: collected once they have doubled since the last time
      // (a walk of the whole tree at every directory fsync was a tenth of a simulator run).
      if (this.s.inodes.size >= this.collectAt) {
        this.collect();
        this.collectAt = Math.max(64, 2 * this.s.inodes.size);
      }
    }
  }

  fsyncAsync(fd: number): Promise<void> {
    const defer = this.deferFsync;
    return new Promise<void>((resolve, reject) => {
      const run = (): void => {
        try {
          this.fsync(fd);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      };
      if (defer) defer(run);
      else run();
    });
  }

  /**
   * A failed fsync leaves the pending operations in an unknown state. Model (fsyncgate): a random
   * prefix of a file's pending writes reaches the disk (as in a crash) and the rest is lost for
   * good — the current view still shows it, but no later fsync writes it. For a directory a
   * random prefix becomes durable and the rest stays pending.
   */
  private failFsync(n: FsNode): void {
    if (n.kind === 'file') {
      const k = pickCut(this.rng, totalPieces(n.ops));
      applyPrefix(n.dur, n.ops, n.log, k, k > 0 ? drawGarble(this.rng, this.failOpts) : null);
      n.ops = [];
      n.log.truncate(0);
      n.lost = true;
    } else {
      const k = pickCut(this.rng, n.ops.length);
      for (let i = 0; i < k && n.ops.length > 0; i++) this.commitOp(n.ops[0]!);
    }
  }

  ftruncate(fd: number, length: number): void {
    const fault = this.begin('ftruncate', this.fdPath(fd), { fd, bytes: length, abs: true });
    const f = this.fd(fd, 'ftruncate');
    if (fault !== null) throw fsFault(fault, 'ftruncate', f.path);
    const n = this.s.inodes.get(f.ino)!;
    if (n.kind === 'dir' || !f.writable) throw fsFault('EINVAL', 'ftruncate');
    this.truncateFile(n, Math.max(0, length)); // node:fs clamps a negative length to 0
  }

  fstat(fd: number): FileStat {
    const fault = this.begin('fstat', this.fdPath(fd), { fd, abs: true });
    const f = this.fd(fd, 'fstat');
    if (fault !== null) throw fsFault(fault, 'fstat', f.path);
    return statOf(this.s.inodes.get(f.ino)!);
  }

  rename(from: string, to: string): void {
    const fault = this.begin('rename', from, { to });
    if (fault !== null) throw fsFault(fault, 'rename', from);
    const a = this.resolve(from, 'rename');
    const b = this.resolve(to, 'rename');
    if (a.node === undefined) throw fsFault('ENOENT', 'rename', from);
    if (a.node.ino === ROOT_INO || b.node?.ino === ROOT_INO) throw fsFault('EBUSY', 'rename', from);
    if (b.node === a.node) return; // two names of one file: nothing to do (POSIX)
    if (a.node.kind === 'dir' && (b.abs + '/').startsWith(a.abs + '/')) throw fsFault('EINVAL', 'rename', from);
    if (b.node?.kind === 'dir' && a.abs.startsWith(b.abs + '/')) throw fsFault('ENOTEMPTY', 'rename', from); // onto an ancestor
    if (b.node !== undefined) {
      if (a.node.kind === 'file' && b.node.kind === 'dir') throw fsFault('EISDIR', 'rename', from);
      if (a.node.kind === 'dir' && b.node.kind === 'file') throw fsFault('ENOTDIR', 'rename', from);
      if (b.node.kind === 'dir' && b.node.entries.size > 0) throw fsFault('ENOTEMPTY', 'rename', from);
    }
    this.dirOp([
      { dir: a.parent.ino, name: a.name, ino: null },
      { dir: b.parent.ino, name: b.name, ino: a.node.ino },
    ]);
  }

  link(existing: string, newPath: string): void {
    const fault = this.begin('link', existing, { to: newPath });
    if (fault !== null) throw fsFault(fault, 'link', existing);
    const a = this.resolve(existing, 'link');
    if (a.node === undefined) throw fsFault('ENOENT', 'link', existing);
    const b = this.resolve(newPath, 'link');
    if (b.node !== undefined) throw fsFault('EEXIST', 'link', newPath);
    if (a.node.kind === 'dir') throw fsFault('EPERM', 'link', existing);
    this.dirOp([{ dir: b.parent.ino, name: b.name, ino: a.node.ino }]);
  }

  unlink(p: string): void {
    const fault = this.begin('unlink', p);
    if (fault !== null) throw fsFault(fault, 'unlink', p);
    const r = this.resolve(p, 'unlink');
    if (r.node === undefined) throw fsFault('ENOENT', 'unlink', p);
    if (r.node.kind === 'dir') throw fsFault('EISDIR', 'unlink', p);
    this.dirOp([{ dir: r.parent.ino, name: r.name, ino: null }]);
  }

  rmdir(p: string): void {
    const fault = this.begin('rmdir', p);
    if (fault !== null) throw fsFault(fault, 'rmdir', p);
    const r = this.resolve(p, 'rmdir');
    if (r.node === undefined) throw fsFault('ENOENT', 'rmdir', p);
    if (r.node.ino === ROOT_INO) throw fsFault('EBUSY', 'rmdir', p);
    if (r.node.kind === 'file') throw fsFault('ENOTDIR', 'rmdir', p);
    if (r.node.entries.size > 0) throw fsFault('ENOTEMPTY', 'rmdir', p);
    this.dirOp([{ dir: r.parent.ino, name: r.name, ino: null }]);
  }

  mkdir(p: string, opts?: { recursive?: boolean }): void {
    const fault = this.begin('mkdir', p);
    if (fault !== null) throw fsFault(fault, 'mkdir', p);
    if (!opts?.recursive) {
      const r = this.resolve(p, 'mkdir');
      if (r.node !== undefined) throw fsFault('EEXIST', 'mkdir', p);
      this.checkInodes('mkdir', p);
      this.dirOp([{ dir: r.parent.ino, name: r.name, ino: this.newDir().ino }]);
      return;
    }
    if (p === '') throw fsFault('ENOENT', 'mkdir', p);
    const parts = absPath(p).split('/').filter((x) => x !== '');
    let d = this.dirAt(ROOT_INO);
    parts.forEach((name, i) => {
      const ino = d.entries.get(name);
      const n = ino === undefined ? undefined : this.s.inodes.get(ino)!;
      if (n === undefined) {
        this.checkInodes('mkdir', p);
        const nd = this.newDir();
        this.dirOp([{ dir: d.ino, name, ino: nd.ino }]);
        d = nd;
      } else if (n.kind === 'file') {
        throw fsFault(i === parts.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
      } else d = n;
    });
  }

  readdir(p: string): string[] {
    const fault = this.begin('readdir', p);
    if (fault !== null) throw fsFault(fault, 'scandir', p);
    const r = this.resolve(p, 'scandir');
    if (r.node === undefined) throw fsFault('ENOENT', 'scandir', p);
    if (r.node.kind === 'file') throw fsFault('ENOTDIR', 'scandir', p);
    return [...r.node.entries.keys()];
  }

  stat(p: string): FileStat {
    const fault = this.begin('stat', p);
    if (fault !== null) throw fsFault(fault, 'stat', p);
    const r = this.resolve(p, 'stat');
    if (r.node === undefined) throw fsFault('ENOENT', 'stat', p);
    return statOf(r.node);
  }

  access(p: string, mode: 'read' | 'write'): void {
    const fault = this.begin('access', p);
    if (fault !== null) throw fsFault(fault, 'access', p);
    const r = this.resolve(p, 'access');
    if (r.node === undefined) throw fsFault('ENOENT', 'access', p);
    if (mode === 'write' && this.readOnly) throw fsFault('EROFS', 'access', p);
  }

  readFile(p: string): Buffer {
    const fault = this.begin('readFile', p);
    if (fault !== null) throw fsFault(fault, 'read', p);
    const r = this.resolve(p, 'open');
    if (r.node === undefined) throw fsFault('ENOENT', 'open', p);
    if (r.node.kind === 'dir') throw fsFault('EISDIR', 'read', p);
    return Buffer.from(r.node.cur.view());
  }

  // ---- internals ----

  /**
   * Start a call: SimCrash when halted or at the armed call, count and trace a mutating call, then
   * the read-only switch and the fault rules. Returns the injected fault (the caller throws it,
   * after what a failed fsync does) or null.
   */
  private begin(kind: CallKind, p: string, extra: { fd?: number; flags?: OpenFlags; to?: string; bytes?: number; position?: number; abs?: boolean } = {}): FaultCode | 'short' | null {
    if (this.haltedBy !== null) throw this.haltedBy;
    const abs = extra.abs ? p : absPath(p);
    const to = extra.to === undefined ? undefined : absPath(extra.to);
    const mutating = MUTATING_KINDS.has(kind) && !(kind === 'open' && extra.flags === 'r');
    let entry: TraceEntry | undefined;
    if (mutating) {
      const n = ++this.calls_;
      if (this.traceOn) {
        // One shape for every entry (absent fields undefined): keeps tracing cheap.
        entry = { n, kind, path: abs, to, fd: extra.fd, flags: extra.flags, bytes: extra.bytes, position: extra.position, error: undefined };
        this.trace_.push(entry);
      }
      try {
        if (n === this.crashAt) throw new SimCrash(n, kind, abs);
        this.onCall?.(n, kind, abs);
      } catch (e) {
        if (e instanceof SimCrash) this.haltedBy = e;
        throw e;
      }
      if (this.readOnly) {
        if (entry) entry.error = 'EROFS';
        return 'EROFS';
      }
    }
    const code = this.faults.match(kind, mutating, abs, to, this.rng);
    if (entry && code !== null && code !== 'short') entry.error = code;
    return code;
  }

  private fdPath(fd: number): string {
    return this.fds.get(fd)?.path ?? '';
  }

  private fd(fd: number, syscall: string): OpenFile {
    const f = this.fds.get(fd);
    if (f === undefined) throw fsFault('EBADF', syscall);
    return f;
  }

  private dirAt(ino: number): DirNode {
    return this.s.inodes.get(ino) as DirNode;
  }

  private resolve(p: string, syscall: string): Resolved {
    if (p === '') throw fsFault('ENOENT', syscall, p);
    const abs = absPath(p);
    const parts = abs.split('/').filter((x) => x !== '');
    let d = this.dirAt(ROOT_INO);
    if (parts.length === 0) return { parent: d, name: '', node: d, abs };
    for (let i = 0; i < parts.length - 1; i++) {
      const ino = d.entries.get(parts[i]!);
      if (ino === undefined) throw fsFault('ENOENT', syscall, p);
      const n = this.s.inodes.get(ino)!;
      if (n.kind !== 'dir') throw fsFault('ENOTDIR', syscall, p);
      d = n;
    }
    const name = parts[parts.length - 1]!;
    const ino = d.entries.get(name);
    const node = ino === undefined ? undefined : this.s.inodes.get(ino);
    if (node?.kind === 'file' && p.endsWith('/')) throw fsFault('ENOTDIR', syscall, p);
    return { parent: d, name, node, abs };
  }

  private checkInodes(syscall: string, p: string): void {
    const lim = this.capacity?.inodes;
    if (lim !== undefined && this.liveInodes() >= lim) throw fsFault('ENOSPC', syscall, p);
  }

  private newFile(): FileNode {
    const n: FileNode = { kind: 'file', ino: this.s.nextIno++, cur: Bytes.empty(), dur: Bytes.empty(), ops: [], log: Bytes.empty(), lost: false, nlink: 0, open: 0, mtimeMs: this.now() };
    this.s.inodes.set(n.ino, n);
    return n;
  }

  private newDir(): DirNode {
    const n: DirNode = { kind: 'dir', ino: this.s.nextIno++, entries: new Map(), durable: new Map(), ops: [], nlink: 0, open: 0, mtimeMs: this.now() };
    this.s.inodes.set(n.ino, n);
    return n;
  }

  private truncateFile(n: FileNode, len: number): void {
    if (n.cur.len === len) return;
    n.cur.truncate(len);
    n.ops.push({ t: 't', len });
    n.mtimeMs = this.now();
  }

  /** Apply name changes to the current view and queue them as one pending operation of each directory concerned. */
  private dirOp(changes: DirOp['changes']): void {
    const dirs: number[] = [];
    const t = this.now();
    for (const c of changes) {
      const d = this.dirAt(c.dir);
      const old = d.entries.get(c.name);
      if (old !== undefined) this.s.inodes.get(old)!.nlink--;
      if (c.ino === null) d.entries.delete(c.name);
      else {
        d.entries.set(c.name, c.ino);
        this.s.inodes.get(c.ino)!.nlink++;
      }
      d.mtimeMs = t;
      if (!dirs.includes(c.dir)) dirs.push(c.dir);
    }
    const op: DirOp = { id: this.nextOp++, changes, dirs };
    for (const di of dirs) this.dirAt(di).ops.push(op);
  }

  /** Make `op` durable, and first every operation queued before it in each of its directories. */
  private commitOp(op: DirOp): void {
    for (const di of op.dirs) {
      const d = this.dirAt(di);
      if (!d.ops.includes(op)) return; // already durable
      while (d.ops[0] !== op) this.commitOp(d.ops[0]!);
    }
    for (const c of op.changes) {
      const m = this.dirAt(c.dir).durable;
      if (c.ino === null) m.delete(c.name);
      else m.set(c.name, c.ino);
    }
    for (const di of op.dirs) this.dirAt(di).ops.shift();
  }

  /** Drop inodes no view can reach any more: not in a current or durable entry, a pending operation or an open fd. */
  private collect(): void {
    const keep = new Set<number>([ROOT_INO]);
    const stack = [ROOT_INO];
    const mark = (ino: number | null): void => {
      if (ino === null || keep.has(ino)) return;
      keep.add(ino);
      stack.push(ino);
    };
    for (const f of this.fds.values()) mark(f.ino);
    while (stack.length > 0) {
      const n = this.s.inodes.get(stack.pop()!)!;
      if (n.kind !== 'dir') continue;
      for (const ino of n.entries.values()) mark(ino);
      for (const ino of n.durable.values()) mark(ino);
      for (const op of n.ops) for (const c of op.changes) mark(c.ino);
    }
    for (const ino of this.s.inodes.keys()) if (!keep.has(ino)) this.s.inodes.delete(ino);
  }
}

function checkRange(buf: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > buf.length) throw new RangeError(`offset ${offset} out of range`);
  if (!Number.isInteger(length) || length < 0 || offset + length > buf.length) throw new RangeError(`length ${length} out of range`);
}
