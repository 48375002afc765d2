/**
 * A follower loads a received snapshot in slices across turns of the event loop (src/node/install.ts)
 * and keeps handling Raft traffic meanwhile. What may run concurrently with a load, and what must
 * wait: heartbeats are answered; entries after the snapshot are not applied (nor their values seen)
 * before the snapshot is the state; a newer snapshot supersedes the load; stop cancels it; a failure
 * while reading stops the node; a node recovering at start answers init_ok at once and its requests
 * wait for the recovered state.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServeOptions } from '../../src/node/options.js';
import { MemorySink } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import type { NodeStore } from '../../src/node/store.js';
import type { Entry, Json, SnapshotMeta } from '../../src/raft/types.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import { inProcessServer, slicingTimers, tmpDir } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];


function snapshotBytes(meta: SnapshotMeta, keys: number, value: (i: number) => Json, formatVersion: 2 | 3 = 3): Buffer {
  const kv: Array<[Json, Json]> = Array.from({ length: keys }, (_, i) => [`k${i}`, value(i)]);
  return encodeSnapshot(meta, { kv }, { createdAt: 0, formatVersion });
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface Node {
  server: RaftServer;
  sink: MemorySink;
  fatal: Error[];
  send(src: string, body: Record<string, unknown>): void;
  bodies(type?: string): Array<Record<string, unknown>>;
}

function node(dir: string, opts: Partial<ServeOptions> = {}, wrap: (s: NodeStore) => NodeStore = (s) => s, id = 'n2', ids = IDS): Node {
  const sink = new MemorySink();
  const fatal: Error[] = [];
  const server = inProcessServer(sink, { dataDir: dir, fsync: false, ...opts }, slicingTimers(), { wrapStore: wrap, onFatal: (e) => fatal.push(e) });
  let msgId = 1;
  const n: Node = {
    server,
    sink,
    fatal,
    send(src, body) {
      server.handleLine(JSON.stringify({ src, dest: id, body: { ...body, msg_id: msgId++ } }));
    },
    bodies: (type) =>
      sink.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body).filter((b) => type === undefined || b['type'] === type),
  };
  n.send('c0', { type: 'init', node_id: id, node_ids: ids });
  return n;
}

/** Send a whole snapshot from leader n1 in 3 chunks; resolves once the last chunk is handled (the load has started). */
async function sendSnapshot(n: Node, meta: SnapshotMeta, bytes: Buffer): Promise<void> {
  const size = Math.ceil(bytes.length / 3);
  for (let off = 0; off < bytes.length; off += size) {
    const data = bytes.subarray(off, off + size);
    const done = off + data.length === bytes.length;
    n.send('n1', { type: 'raft_install_snapshot', term: meta.term, meta, size: bytes.length, offset: off, data: data.toString('base64'), done });
    // One chunk at a time is with the driver (the core drops another meanwhile): wait for its reply.
    const stored = off + data.length;
    await until(() => n.bodies('raft_install_snapshot_reply').some((b) => b['bytesStored'] === stored && (b['meta'] as SnapshotMeta).index === meta.index), 'chunk reply');
  }
}

function append(n: Node, term: number, prevLogIndex: number, prevLogTerm: number, entries: Entry[], leaderCommit: number): void {
  n.send('n1', { type: 'raft_append_entries', term, prevLogIndex, prevLogTerm, entries, leaderCommit });
}

async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 20000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const META: SnapshotMeta = { index: 50, term: 1, config: IDS };
const KEYS = 60_000; // 8 chunks or more: several slices

describe('follower: a received snapshot is loaded in slices', () => {
  it('answers heartbeats while loading; entries after the snapshot wait until it is the state', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const n = node(dir);
    await n.server.idle();
    await sendSnapshot(n, META, snapshotBytes(META, KEYS, (i) => i));
    expect(n.server.loadingSnapshot).toMatchObject({ index: 50 });
    // The state machine is untouched so far: the old (empty) state at 0.
    expect(n.server.applied).toBe(0);
    expect(n.server.kv.size).toBe(0);

    // A heartbeat and then entries 51..52 (52 overwrites k0, committed), while the load runs.
    const before = n.bodies('raft_append_entries_reply').length;
    append(n, 1, 50, 1, [], 50);
    append(n, 1, 50, 1, [
      { index: 51, term: 1, data: { op: 'write', key: 'new', value: 'x' } },
      { index: 52, term: 1, data: { op: 'write', key: 'k0', value: 'overwritten' } },
    ], 52);
    await until(() => n.bodies('raft_append_entries_reply').length >= before + 2, 'append replies');
    // Answered while the snapshot was still loading.
    expect(n.server.loadingSnapshot).not.toBeNull();
    expect(n.bodies('raft_append_entries_reply').slice(before).every((b) => b['success'] === true)).toBe(true);
    expect(n.server.applied).toBe(0);
    expect(n.server.kv.get('new')).toBeUndefined();

    await n.server.idle();
    expect(n.server.loadingSnapshot).toBeNull();
    expect(n.server.applied).toBe(52);
    expect(n.server.kv.size).toBe(KEYS + 1);
    expect(n.server.kv.get('k0')).toBe('overwritten');
    expect(n.server.kv.get('k59999')).toBe(59999);
    expect(n.server.stats.snapshotsInstalled).toBe(1);
    expect(n.fatal).toEqual([]);
    await n.server.end();
  });

  it('a newer snapshot arriving during a load supersedes it', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    // retain 1: storing the newer one deletes the file of the load in progress.
    const n = node(dir, { retain: 1 });
    await n.server.idle();
    await sendSnapshot(n, META, snapshotBytes(META, KEYS, () => 'a'));
    expect(n.server.loadingSnapshot).toMatchObject({ index: 50 });
    const B: SnapshotMeta = { index: 80, term: 1, config: IDS };
    await sendSnapshot(n, B, snapshotBytes(B, 1000, () => 'b'));
    await n.server.idle();
    expect(n.fatal).toEqual([]);
    expect(n.server.applied).toBe(80);
    expect(n.server.kv.size).toBe(1000);
    expect(n.server.kv.get('k0')).toBe('b');
    expect(n.server.stats.snapshotsInstalled).toBe(1);
    await n.server.end();
  });

  it('stop during a load cancels it: nothing is installed, the file is released', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const closed: string[] = [];
    const n = node(dir, {}, (s) => {
      const open = s.openSnapshot.bind(s);
      s.openSnapshot = (meta) => {
        const st = open(meta);
        return { keyCount: st.keyCount, next: () => st.next(), get sessions() { return st.sessions; }, close: () => { closed.push(`${meta.index}`); st.close(); } };
      };
      return s;
    });
    await n.server.idle();
    await sendSnapshot(n, META, snapshotBytes(META, KEYS, (i) => i));
    expect(n.server.loadingSnapshot).not.toBeNull();
    n.server.stop('a test', new Error('stopped by the test'));
    await until(() => closed.length > 0, 'the file released');
    await new Promise((r) => setTimeout(r, 20));
    expect(n.server.kv.size).toBe(0);
    expect(n.server.applied).toBe(0);
    expect(n.server.loadingSnapshot).toBeNull();
    expect(n.fatal.map((e) => e.message)).toEqual(['stopped by the test']);
  });

  it('a failure while reading the snapshot stops the node (fail-stop), the old state never replaced', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const n = node(dir, {}, (s) => {
      const open = s.openSnapshot.bind(s);
      s.openSnapshot = (meta) => {
        const st = open(meta);
        let calls = 0;
        return {
          keyCount: st.keyCount,
          next: () => {
            if (++calls === 3) throw new Error('EIO: i/o error, read');
            return st.next();
          },
          get sessions() {
            return st.sessions;
          },
          close: () => st.close(),
        };
      };
      return s;
    });
    await n.server.idle();
    await sendSnapshot(n, META, snapshotBytes(META, KEYS, (i) => i));
    await until(() => n.fatal.length > 0, 'fail-stop');
    expect(n.fatal[0]!.message).toMatch(/EIO/);
    expect(n.server.stopped).toBe(true);
    expect(n.server.kv.size).toBe(0);
    const lines = n.sink.lines.length;
    append(n, 1, 50, 1, [], 50);
    await new Promise((r) => setTimeout(r, 20));
    expect(n.sink.lines.length).toBe(lines); // nothing more is sent
  });
});

describe('recovery at start: a format 2 snapshot is loaded in slices (format 3: test/node/keyed-recovery.test.ts)', () => {
  it('init_ok comes at once; a read waits for the loaded state and sees it with the log after it', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    // A single node's directory: snapshot at 50 of 60,000 keys, then entry 51 (k1 = "after"), committed.
    const SOLO: SnapshotMeta = { index: 50, term: 1, config: ['n1'] };
    const ds = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
    ds.dir.setMembers(['n1']);
    ds.saveSnapshot(SOLO, snapshotBytes(SOLO, KEYS, (i) => i, 2));
    ds.append([{ index: 51, term: 1, data: { op: 'write', key: 'k1', value: 'after' } }]);
    ds.setHardState({ term: 1, votedFor: 'n1', commit: 51 });
    ds.sync();
    ds.close();

    let sink: MemorySink | null = null;
    let linesAtEnd = -1;
    const n = node(dir, {}, (s) => {
      const open = s.openSnapshot.bind(s);
      s.openSnapshot = (meta) => {
        const st = open(meta);
        return {
          keyCount: st.keyCount,
          next: () => {
            const c = st.next();
            if (c === null) linesAtEnd = sink!.lines.length;
            return c;
          },
          get sessions() {
            return st.sessions;
          },
          close: () => st.close(),
        };
      };
      return s;
    }, 'n1', ['n1']);
    sink = n.sink;
    n.send('c1', { type: 'read', key: 'k1' });
    n.send('c1', { type: 'read', key: 'k59999' });
    await n.server.idle();
    expect(n.fatal).toEqual([]);
    const types = n.bodies().map((b) => b['type']);
    // init_ok went out before the whole snapshot had been read; both reads after it, with the
    // snapshot's value and the log's write after it.
    expect(types.indexOf('init_ok')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('init_ok')).toBeLessThan(linesAtEnd);
    expect(types.indexOf('read_ok')).toBeGreaterThanOrEqual(linesAtEnd);
    expect(n.bodies('read_ok').map((b) => b['value'])).toEqual(['after', 59999]);
    expect(n.server.kv.size).toBe(KEYS);
    await n.server.end();
  });
});
