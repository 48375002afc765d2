/**
 * `repair`: a way out of damage that recovery refuses to guess about (docs/FORMAT.md, "torn or
 * corrupt"), only when asked, like `etcdutl`:
 *  - `cutWal`: the WAL is cut at its first damaged record (synced bytes that changed, an
 *    unreadable segment header): that segment is truncated there and the segments after it are
 *    set aside, each after keeping a copy (`<segment>.torn-<ms>`, the name recovery gives the
 *    copies of torn tails, so inspect lists them and restore knows them as raftsnap's);
 *  - `quarantineSnapshot`: snapshot files that fail their checksums are renamed `*.broken` (what
 *    recovery with repair does), so that recovery loads the next older one on purpose.
 * Before anything changes the repair is carried out on an in-memory copy of the directory (MemFs)
 * and recovered there: the plan says what will be lost (the entries after the cut, and how many of
 * them may have been acknowledged: those at or below the last durable commit index) and whether
 * the directory recovers afterwards. `dryRun` stops there. A live directory is refused (a dry run
 * reads it). Without a flag nothing is changed and the damage is only described.
 */
import path from 'node:path';
import type { Json } from '../raft/types.js';
import {
  BROKEN_SUFFIX,
  DataDir,
  MemFs,
  fsyncDir,
  nodeFs,
  readWal,
  verifySnapshotFile,
  type FileSystem,
  type SyncOptions,
} from '../storage/index.js';
import { ToolError, toToolError } from './errors.js';
import { retype, underBase } from './files.js';
import { guard, pathKind, toolNow } from './load.js';

export interface RepairOptions {
  cutWal?: boolean;
  quarantineSnapshot?: boolean;
  dryRun?: boolean;
}

export interface WalDamage {
  file: string;
  offset: number;
  reason: string;
}

export interface LostEntry {
  index: number;
  term: number;
  /** At or below the last durable commit index: a client may have been told it succeeded. */
  acknowledged: boolean;
  data: Json;
}

export interface RepairResult {
  dir: string;
  dryRun: boolean;
  /** What was asked (the flags). */
  asked: { cutWal: boolean; quarantineSnapshot: boolean };
  /** Why recovery refuses the directory now (null: it recovers). */
  before: { recovers: boolean; error: { code: string; message: string } | null };
  walDamage: WalDamage | null;
  damagedSnapshots: Array<{ file: string; problem: string }>;
  /** What the repair does (did), one line each. */
  actions: string[];
  /** Copies kept of everything changed or set aside. */
  copies: string[];
  lost: {
    /** Entries readable in what is cut away or set aside. */
    entries: LostEntry[];
    /** Bytes after the damaged record in its segment, which cannot be read safely. */
    unreadableBytes: number;
    /** The unreadable part holds entries from this index on (null: no damage cut). */
    unreadableFrom: number | null;
    /** Highest commit index recorded by any readable hard state: entries at or below it were acknowledged. */
    lastDurableCommit: number;
    /** Readable lost entries at or below lastDurableCommit, plus unreadable ones known to be at or below it. */
    acknowledged: number;
    /**
     * True when bytes after the damage cannot be read: a hard state recorded there (a higher commit
     * index) cannot be seen, so the unreadable entries may have been acknowledged too.
     */
    unreadableMayBeAcknowledged: boolean;
  };
  /** The directory after the repair (on the copy for a dry run). */
  after: { recovers: boolean; error: { code: string; message: string } | null; snapshotIndex: number; lastIndex: number | null; commit: number | null };
  /** True when a repair was carried out on the directory itself. */
  changed: boolean;
  warnings: string[];
}

/** Copy a data directory's files (meta.json, snap/, wal/) into a MemFs at the same path. */
function copyToMem(dir: string): MemFs {
  const mem = new MemFs();
  mem.mkdir(dir, { recursive: true });
  const copy = (from: string) => {
    const st = nodeFs.stat(from);
    if (st.isDirectory()) {
      if (from !== dir) mem.mkdir(from);
      for (const n of nodeFs.readdir(from)) copy(path.join(from, n));
      return;
    }
    if (path.basename(from) === 'LOCK') return;
    const fd = mem.open(from, 'w');
    const b = nodeFs.readFile(from);
    mem.write(fd, b, 0, b.length, 0);
    mem.close(fd);
  };
  copy(dir);
  return mem;
}

interface Plan {
  walDamage: WalDamage | null;
  /** Segment paths: the one cut (at `offset`), and those after it. */
  cut: { path: string; offset: number; headerBad: boolean } | null;
  later: string[];
  damagedSnapshots: Array<{ path: string; problem: string }>;
}

function findDamage(dd: DataDir): Plan {
  const segs = dd.listSegments();
  let cut: Plan['cut'] = null;
  let walDamage: WalDamage | null = null;
  const later: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (cut) {
      later.push(s.path);
      continue;
    }
    const last = i === segs.length - 1;
    if (s.error) {
      cut = { path: s.path, offset: 0, headerBad: true };
      walDamage = { file: s.path, offset: s.error.offset ?? 0, reason: s.error.message.startsWith(`${s.path}: `) ? s.error.message.slice(s.path.length + 2) : s.error.message };
    } else if (s.damage && !(last && s.damage.tailOnly)) {
      cut = { path: s.path, offset: s.damage.offset, headerBad: false };
      walDamage = { file: s.path, offset: s.damage.offset, reason: s.damage.reason };
    }
  }
  const damagedSnapshots: Plan['damagedSnapshots'] = [];
  for (const s of dd.listSnapshots()) {
    const v = verifySnapshotFile(s.path, { fs: dd.fs });
    if (v.problems.length > 0) damagedSnapshots.push({ path: s.path, problem: v.problems[0]!.message });
  }
  return { walDamage, cut, later, damagedSnapshots };
}

function copyFile(fsys: FileSystem, from: string, to: string, sync: SyncOptions): void {
  const bytes = fsys.readFile(from);
  const fd = fsys.open(to, 'wx');
  try {
    let off = 0;
    while (off < bytes.length) off += fsys.write(fd, bytes, off, bytes.length - off, off);
    if (sync.fsync !== false) fsys.fsync(fd);
  } finally {
    fsys.close(fd);
  }
}

/** Carry out the plan on `fsys` (the directory, or its in-memory copy). Returns actions and copies. */
function apply(fsys: FileSystem, dd: DataDir, plan: Plan, opts: RepairOptions, now: number, show: (p: string) => string): { actions: string[]; copies: string[] } {
  const sync: SyncOptions = { fs: fsys, fsync: true };
  const actions: string[] = [];
  const copies: string[] = [];
  if (opts.quarantineSnapshot) {
    for (const s of plan.damagedSnapshots) {
      fsys.rename(s.path, s.path + BROKEN_SUFFIX);
      actions.push(`renamed ${show(s.path)} to ${path.basename(s.path)}${BROKEN_SUFFIX} (recovery loads the next older snapshot)`);
      copies.push(show(s.path + BROKEN_SUFFIX));
    }
    if (plan.damagedSnapshots.length > 0) fsyncDir(dd.snapDir, sync);
  }
  if (opts.cutWal && plan.cut) {
    const c = plan.cut;
    const copy = `${c.path}.torn-${now}`;
    if (c.headerBad) {
      fsys.rename(c.path, copy);
      actions.push(`set aside ${show(c.path)} (its header is unreadable) as ${path.basename(copy)}`);
    } else {
      copyFile(fsys, c.path, copy, sync);
      const fd = fsys.open(c.path, 'r+');
      try {
        fsys.ftruncate(fd, c.offset);
        fsys.fsync(fd);
      } finally {
        fsys.close(fd);
      }
      actions.push(`cut ${show(c.path)} at offset ${c.offset} (copy kept as ${path.basename(copy)})`);
    }
    copies.push(show(copy));
    for (const p of plan.later) {
      const aside = `${p}.torn-${now}`;
      fsys.rename(p, aside);
      actions.push(`set aside ${show(p)}, after the cut, as ${path.basename(aside)}`);
      copies.push(show(aside));
    }
    fsyncDir(dd.walDir, sync);
  }
  return { actions, copies };
}

function recoveryOf(fsys: FileSystem, dir: string): RepairResult['after'] {
  try {
    const dd = DataDir.open(dir, { mode: 'read', fs: fsys });
    const r = dd.recover({ repair: false, loadContent: false });
    return { recovers: true, error: null, snapshotIndex: r.snapshot?.header.index ?? 0, lastIndex: r.lastIndex, commit: Math.min(r.hardState.commit, r.lastIndex) };
  } catch (e) {
    const t = toToolError(e, dir);
    return { recovers: false, error: { code: t.code, message: retype(dir, t.message) }, snapshotIndex: 0, lastIndex: null, commit: null };
  }
}

/** What the cut loses: readable entries of the cut part and later segments; the unreadable rest by index. */
function lostBy(dd: DataDir, plan: Plan): RepairResult['lost'] {
  let lastDurableCommit = 0;
  let lastKeptIndex = 0;
  const entries: Array<{ index: number; term: number; data: Json }> = [];
  let unreadableBytes = 0;
  const cutPath = plan.cut?.path ?? null;
  const laterSet = new Set(plan.later);
  let inCut = false;
  for (const item of readWal(dd.walDir, { fs: dd.fs })) {
    if (item.type === 'damage') {
      if (item.file === cutPath) unreadableBytes = dd.fs.stat(item.file).size - item.offset;
      continue;
    }
    if (item.type === 'hardState') lastDurableCommit = Math.max(lastDurableCommit, item.hardState.commit);
    inCut = laterSet.has(item.file) || (item.file === cutPath && item.offset >= plan.cut!.offset);
    if (item.type !== 'entry') continue;
    if (inCut) entries.push({ index: item.entry.index, term: item.entry.term, data: item.entry.data });
    else lastKeptIndex = Math.max(lastKeptIndex, item.entry.index);
  }
  if (plan.cut?.headerBad) unreadableBytes = dd.fs.stat(plan.cut.path).size;
  // The snapshot recovery will load covers what it holds: those entries are not lost.
  const snapIndex = (() => {
    try {
      return dd.recover({ repair: false, loadContent: false }).snapshot?.header.index ?? 0;
    } catch {
      const ok = dd.listSnapshots().filter((s) => s.header && !plan.damagedSnapshots.some((d) => d.path === s.path));
      return ok.length > 0 ? ok[ok.length - 1]!.index : 0;
    }
  })();
  const kept = entries.filter((e) => e.index > snapIndex);
  const unreadableFrom = plan.cut ? Math.max(lastKeptIndex, snapIndex) + 1 : null;
  const firstReadableLost = kept.length > 0 ? kept[0]!.index : null;
  // Unreadable entries: from unreadableFrom up to before the first readable lost entry (or up to the commit index).
  let acknowledged = kept.filter((e) => e.index <= lastDurableCommit).length;
  if (unreadableFrom !== null && unreadableBytes > 0) {
    const upTo = Math.min(lastDurableCommit, (firstReadableLost ?? Number.MAX_SAFE_INTEGER) - 1);
    if (upTo >= unreadableFrom) acknowledged += upTo - unreadableFrom + 1;
  }
  return {
    entries: kept.map((e) => ({ ...e, acknowledged: e.index <= lastDurableCommit })),
    unreadableBytes,
    unreadableFrom: unreadableBytes > 0 ? unreadableFrom : null,
    lastDurableCommit,
    acknowledged,
    unreadableMayBeAcknowledged: unreadableBytes > 0,
  };
}

export function repairDir(dir: string, opts: RepairOptions = {}): RepairResult {
  if (pathKind(dir) !== 'dir') throw new ToolError('ENOTDIR', dir, 'not a directory (expected a raftsnap data directory)');
  const show = (p: string) => underBase(dir, p);
  const warnings: string[] = [];
  const asked = { cutWal: opts.cutWal === true, quarantineSnapshot: opts.quarantineSnapshot === true };
  const acting = (asked.cutWal || asked.quarantineSnapshot) && !opts.dryRun;
  const ro = guard(() => DataDir.open(dir, { mode: 'read' }), dir);
  if (ro.lockedBy !== null) {
    if (acting) {
      throw new ToolError('LOCKED', dir, `directory is in use by the live node with pid ${ro.lockedBy} (LOCK); stop that node before repairing, or use --dry-run to see what repair would do (nothing was changed)`);
    }
    warnings.push(`${dir}: directory is in use by pid ${ro.lockedBy}; reading anyway (repair itself would refuse it)`);
  }
  const before = recoveryOf(nodeFs, dir);
  const plan = guard(() => findDamage(ro), dir);
  const lost = guard(
    () => (asked.cutWal && plan.cut ? lostBy(ro, plan) : { entries: [], unreadableBytes: 0, unreadableFrom: null, lastDurableCommit: 0, acknowledged: 0, unreadableMayBeAcknowledged: false }),
    dir,
  );
  const now = toolNow();

  // Rehearse on an in-memory copy: the plan's actions and the recovery they lead to.
  const mem = guard(() => copyToMem(dir), dir);
  const memDd = guard(() => DataDir.open(dir, { mode: 'read', fs: mem }), dir);
  const rehearsal = guard(() => apply(mem, memDd, plan, asked, now, show), dir);
  const after = recoveryOf(mem, dir);
  let actions = rehearsal.actions;
  let copies = rehearsal.copies;
  let changed = false;
  if (acting && actions.length > 0 && !after.recovers) {
    throw new ToolError(
      'REFUSED',
      dir,
      `the repair would not make the directory recoverable (afterwards: ${after.error!.message}); nothing was changed (rebuild this node from a healthy one's snapshot: raftsnap snapshot, then raftsnap restore)`,
    );
  }
  if (acting && actions.length > 0) {
    const dd = guard(() => DataDir.open(dir, { mode: 'write' }), dir);
    try {
      ({ actions, copies } = guard(() => apply(nodeFs, dd, plan, asked, now, show), dir));
      changed = true;
    } finally {
      dd.close();
    }
    const real = recoveryOf(nodeFs, dir);
    if (real.recovers !== after.recovers) warnings.push(`${dir}: the directory does not recover as the rehearsal did; inspect it`);
  }
  return {
    dir,
    dryRun: opts.dryRun === true || !acting,
    asked,
    before: { recovers: before.recovers, error: before.error },
    walDamage: plan.walDamage ? { ...plan.walDamage, file: show(plan.walDamage.file), reason: retype(dir, plan.walDamage.reason) } : null,
    damagedSnapshots: plan.damagedSnapshots.map((s) => ({ file: show(s.path), problem: retype(dir, s.problem) })),
    actions,
    copies,
    lost,
    after: changed ? recoveryOf(nodeFs, dir) : after,
    changed,
    warnings,
  };
}
