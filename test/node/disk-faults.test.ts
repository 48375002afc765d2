/**
 * Disk faults on real processes, the way they happen: the data directory on a small tmpfs that
 * fills up (ENOSPC), or is remounted read-only (EROFS). The node must stop within seconds of the
 * first failure (exit non-zero, one FATAL line, bounded stderr, no leaked files), and once the
 * disk is usable again, a restart on the same directory keeps every acknowledged write and no
 * effect of an operation answered with a definite error.
 *
 * Mounting needs root (CAP_SYS_ADMIN); without it these tests are skipped and say so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, RUN, ROOT, sleep, tmpDir, type Msg } from './helpers.js';

function canMount(): boolean {
  if (process.platform !== 'linux') return false;
  const d = tmpDir('raftsnap-mountcheck-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d], { stdio: 'ignore' });
    execFileSync('umount', [d], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

const MOUNT = canMount();
const EXT4 = MOUNT && ['mkfs.ext4', 'e2fsck', 'findmnt'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0) && fs.existsSync('/sys/fs/ext4');
if (!MOUNT) console.warn('disk-faults: cannot mount a tmpfs here (needs root); the disk-fault process tests are skipped');

const mounts: string[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m]);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh tmpfs of `size` (e.g. "3m") mounted on a new directory. */
function tmpfs(size: string): string {
  const d = tmpDir('raftsnap-tmpfs-');
  dirs.push(d);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d]);
  mounts.push(d);
  return d;
}

/** An ext4 file system of `size` in an image file, loop-mounted with errors=remount-ro. */
function ext4(size: string): { mnt: string; img: string } {
  const d = tmpDir('raftsnap-ext4-');
  dirs.push(d);
  const img = path.join(d, 'disk.img');
  execFileSync('truncate', ['-s', size, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  const mnt = path.join(d, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop,errors=remount-ro', img, mnt]);
  mounts.push(mnt);
  return { mnt, img };
}

function remount(dir: string, opts: string): void {
  execFileSync('mount', ['-o', `remount,${opts}`, dir]);
}

/** Every file under `dir`, relative. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function exited(c: Cluster, id: string, ms: number): Promise<number | null> {
  const n = c.nodes.get(id)!;
  return new Promise((resolve) => {
    if (!n.alive) return resolve(n.proc.exitCode);
    const t = setTimeout(() => resolve(null), ms);
    n.proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

type Outcome = 'ok' | 'definite' | 'indefinite';

/** Writes of `bytes`-long values to key `k<i>` until the node stops answering; what each got. */
async function writeUntilStopped(c: Cluster, node: string, bytes: number, max = 2000): Promise<Map<string, { value: string; outcome: Outcome }>> {
  const results = new Map<string, { value: string; outcome: Outcome }>();
  const pad = 'x'.repeat(bytes);
  for (let i = 0; i < max; i++) {
    const key = `k${i}`;
    const value = `${i}:${pad}`;
    let r: Msg;
    try {
      r = await c.request(node, { type: 'write', key, value }, 3000);
    } catch {
      results.set(key, { value, outcome: 'indefinite' });
      break; // no answer: the node stopped
    }
    if (r.body.type === 'write_ok') results.set(key, { value, outcome: 'ok' });
    else {
      const code = r.body['code'] as number;
      results.set(key, { value, outcome: code === 0 || code === 13 || code >= 1000 ? 'indefinite' : 'definite' });
      if (code === 13) break;
    }
  }
  return results;
}

async function checkState(c: Cluster, node: string, results: Map<string, { value: string; outcome: Outcome }>): Promise<void> {
  const st = (await c.request(node, { type: 'get_state' }, 10_000)).body['state'] as Record<string, string>;
  for (const [key, r] of results) {
    if (r.outcome === 'ok') expect(st[key], `acknowledged write of ${key} lost`).toBe(r.value);
    if (r.outcome === 'definite') expect(st[key], `${key} was answered with a definite error but took effect`).toBeUndefined();
  }
}

describe.skipIf(!MOUNT)('disk faults on real processes (tmpfs)', () => {
  it('disk full (ENOSPC): the node exits non-zero within seconds, no leaked files, and restarts with every acknowledged write once space is back', async () => {
    const mnt = tmpfs('3m');
    const dir = path.join(mnt, 'n1');
    const args = ['--data-dir', dir, '--snapshot-threshold', '40', '--segment-size', '256KiB'];
    const c = new Cluster(['n1'], () => args);
    await c.start();
    const t0 = Date.now();
    const results = await writeUntilStopped(c, 'n1', 8000);
    const code = await exited(c, 'n1', 10_000);
    expect(code, 'the node did not exit within 10 s of the first failure').not.toBeNull();
    expect(code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    const stderr = c.stderrOf('n1');
    expect(stderr.length, 'stderr must stay bounded').toBeLessThan(20_000);
    const fatal = stderr.split('\n').filter((l) => l.startsWith('FATAL'));
    expect(fatal, stderr.slice(-2000)).toHaveLength(1);
    expect(fatal[0]).toMatch(/ENOSPC|no space/i);
    expect(fatal[0]).toMatch(/\/n1\//);
    const acked = [...results.values()].filter((r) => r.outcome === 'ok').length;
    expect(acked).toBeGreaterThan(20);
    // No temporary files left behind, no lock (the node released it when it stopped).
    const left = files(dir);
    expect(left.filter((f) => /\.tmp-\d+-\d+$/.test(f)), left.join(', ')).toEqual([]);
    expect(left).not.toContain('LOCK');

    remount(mnt, 'size=64m');
    const again = new Cluster(['n1'], () => args);
    await again.start();
    await checkState(again, 'n1', results);
    const r = await again.request('n1', { type: 'write', key: 'after', value: 1 });
    expect(r.body.type).toBe('write_ok');
    const codes = await again.stop();
    expect(codes['n1']).toBe(0);
  });

  it.skipIf(!EXT4)('read-only file system (EROFS, ext4 remounted read-only after an error): the node exits non-zero within seconds, and restarts with every acknowledged write once writable', async () => {
    const { mnt, img } = ext4('16M');
    const dir = path.join(mnt, 'n1');
    const args = ['--data-dir', dir, '--snapshot-threshold', '25'];
    const c = new Cluster(['n1'], () => args);
    await c.start();
    const results = new Map<string, { value: string; outcome: Outcome }>();
    for (let i = 0; i < 30; i++) {
      const r = await c.request('n1', { type: 'write', key: `k${i}`, value: `v${i}` });
      expect(r.body.type).toBe('write_ok');
      results.set(`k${i}`, { value: `v${i}`, outcome: 'ok' });
    }
    // What a kernel does on a metadata error with errors=remount-ro: every later write is EROFS.
    const dev = execFileSync('findmnt', ['-n', '-o', 'SOURCE', mnt], { encoding: 'utf8' }).trim();
    fs.writeFileSync(`/sys/fs/ext4/${path.basename(dev)}/trigger_fs_error`, '1');
    const t0 = Date.now();
    for (let i = 30; i < 60; i++) {
      let r: Msg;
      try {
        r = await c.request('n1', { type: 'write', key: `k${i}`, value: `v${i}` }, 3000);
      } catch {
        results.set(`k${i}`, { value: `v${i}`, outcome: 'indefinite' });
        break;
      }
      const code = r.body['code'] as number | undefined;
      results.set(`k${i}`, { value: `v${i}`, outcome: r.body.type === 'write_ok' ? 'ok' : code === 13 || code === 0 ? 'indefinite' : 'definite' });
      if (r.body.type !== 'write_ok') break;
    }
    const code = await exited(c, 'n1', 10_000);
    expect(code, 'the node did not exit within 10 s').not.toBeNull();
    expect(code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const stderr = c.stderrOf('n1');
    expect(stderr.length).toBeLessThan(20_000);
    const fatal = stderr.split('\n').filter((l) => l.startsWith('FATAL'));
    expect(fatal, stderr.slice(-2000)).toHaveLength(1);
    expect(fatal[0]).toMatch(/EROFS|read-only/i);

    // Writable again: unmount, repair the file system as an operator would, mount.
    execFileSync('umount', [mnt]);
    spawnSync('e2fsck', ['-fy', img], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    const again = new Cluster(['n1'], () => args);
    await again.start();
    await checkState(again, 'n1', results);
    const w = await again.request('n1', { type: 'write', key: 'after', value: 'v' });
    expect(w.body.type).toBe('write_ok');
    await again.stop();
  });

  it('a follower whose disk fills stops; the majority goes on; restarted with space it catches up to the same state as the leader', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const root = tmpDir('raftsnap-diskfull-');
    dirs.push(root);
    const mnt = tmpfs('2m');
    const dirOf = (id: string): string => (id === 'n2' ? path.join(mnt, id) : path.join(root, id));
    const args = (id: string): string[] => ['--data-dir', dirOf(id), '--snapshot-threshold', '50', '--segment-size', '128KiB'];
    const c = new Cluster(ids, args);
    await c.start();
    let leader = await c.leader();
    if (leader === 'n2') {
      // Keep the small disk on a follower: restart until another node leads.
      c.isolate('n2');
      await sleep(1500);
      c.heal();
      leader = await c.leader();
    }
    const acked = new Map<string, string>();
    const pad = 'y'.repeat(6000);
    let n2Exit: number | null = null;
    for (let i = 0; i < 1500 && n2Exit === null; i++) {
      const r = await c.requestOk({ type: 'write', key: `k${i % 200}`, value: `${i}:${pad}` }, { nodes: ids.filter((x) => x !== 'n2') });
      if (r.body.type === 'write_ok') acked.set(`k${i % 200}`, `${i}:${pad}`);
      if (!c.nodes.get('n2')!.alive) n2Exit = c.nodes.get('n2')!.proc.exitCode;
    }
    expect(n2Exit, 'n2 never stopped although its disk filled').not.toBeNull();
    expect(n2Exit).not.toBe(0);
    expect(c.stderrOf('n2').split('\n').filter((l) => l.startsWith('FATAL'))).toHaveLength(1);
    // The majority still serves.
    const w = await c.requestOk({ type: 'write', key: 'during', value: 1 }, { nodes: ['n1', 'n3'] });
    expect(w.body.type).toBe('write_ok');
    acked.set('during', 1 as unknown as string);

    remount(mnt, 'size=256m');
    await c.startNode('n2');
    // Wait until n2 has applied what the leader has.
    const deadline = Date.now() + 30_000;
    let same = false;
    while (Date.now() < deadline && !same) {
      const a = (await c.request(leader, { type: 'get_state' })).body;
      const b = (await c.request('n2', { type: 'get_state' })).body;
      same = a['last_applied'] === b['last_applied'] && JSON.stringify(a['state']) === JSON.stringify(b['state']);
      if (!same) await sleep(200);
    }
    expect(same, 'n2 never reached the leader state').toBe(true);
    const st = (await c.request('n2', { type: 'get_state' })).body['state'] as Record<string, unknown>;
    for (const [k, v] of acked) expect(st[k]).toEqual(v);
    await c.stop();
    // Offline: the directories agree too.
    const d = spawnSync(process.execPath, [RUN, 'diff', dirOf(leader), dirOf('n2')], { cwd: ROOT, encoding: 'utf8' });
    expect(d.status, d.stdout + d.stderr).toBe(0);
  });
});
