/**
 * Fail-stop: the first storage or apply error stops the node. It answers what may have entered the
 * log with the indefinite error 13, sends nothing else (no acknowledgement, vote or answer), logs
 * one line naming the operation and the file, and reports the failure so that serve exits non-zero.
 * A restart on the same directory then finds nothing that a definite answer denied.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { openNodeStore } from '../../src/node/storage-adapter.js';
import type { NodeStore } from '../../src/node/store.js';
import { StorageError } from '../../src/storage/errors.js';
import { tmpDir } from './helpers.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface Harness {
  server: RaftServer;
  sink: MemorySink;
  logs: string[];
  fatal: Error[];
  send(body: Record<string, unknown>): Promise<void>;
  bodies(): Array<Record<string, unknown>>;
}

let msgId = 1;

/** A single-node server on `dir`; `wrap` may replace store methods to inject failures. */
function harness(dir: string, wrap?: (s: NodeStore) => NodeStore, options: Partial<ServeOptions> = {}): Harness {
  const opts: ServeOptions = { ...defaultOptions(), dataDir: dir, fsync: false, ...options };
  const sink = new MemorySink();
  const logs: string[] = [];
  const log: Logger = { info() {}, debug() {}, warn: (m) => logs.push(m) };
  const fatal: Error[] = [];
  const server = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log,
    openStore: async (id) => {
      const s = await openNodeStore(opts, id, log);
      return wrap ? wrap(s) : s;
    },
    random: () => 0.5,
    onFatal: (e) => fatal.push(e),
  });
  const h: Harness = {
    server,
    sink,
    logs,
    fatal,
    async send(body) {
      server.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { ...body, msg_id: msgId++ } }));
      await server.idle();
    },
    bodies: () => sink.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body),
  };
  return h;
}

async function init(h: Harness): Promise<void> {
  await h.send({ type: 'init', node_id: 'n1', node_ids: ['n1'] });
}

/** Make the `n`th call of `method` on the store throw an EIO StorageError once. */
function failNth(method: 'sync', n: number, file = 'wal/0000000000000001-0000000000000001.wal'): (s: NodeStore) => NodeStore {
  return (s) => {
    let calls = 0;
    const orig = s[method].bind(s);
    s[method] = () => {
      calls++;
      if (calls === n) throw new StorageError('IO', file, 'fsync WAL segment failed: EIO: i/o error, fsync');
      return orig();
    };
    return s;
  };
}

describe('fail-stop on a storage error', () => {
  it('a failed sync stops the node: the pending write gets 13, nothing after it is answered, a restart finds no effect a definite answer denied', async () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    // Calls of sync: 1 = the election's hard state, 2 = the leader's no-op + write a=1, 3 = write a=2.
    const h = harness(dir, failNth('sync', 3));
    await init(h);
    await h.send({ type: 'write', key: 'a', value: 1 });
    await h.send({ type: 'write', key: 'a', value: 2 });
    await h.send({ type: 'cas', key: 'a', from: 2, to: 3 });
    await h.send({ type: 'read', key: 'a' });
    const b = h.bodies();
    expect(b[0]).toMatchObject({ type: 'init_ok' });
    expect(b[1]).toMatchObject({ type: 'write_ok' });
    expect(b[2]).toMatchObject({ type: 'error', code: 13 });
    // Stopped: the cas and the read get no answer at all (no definite error, no stale value).
    expect(b).toHaveLength(3);
    expect(h.fatal).toHaveLength(1);
    const fatalLines = h.logs.filter((l) => l.startsWith('FATAL'));
    expect(fatalLines).toHaveLength(1);
    expect(fatalLines[0]).toMatch(/0000000000000001-0000000000000001\.wal/);
    expect(fatalLines[0]).toMatch(/EIO/);
    await h.server.end();
    expect(h.bodies()).toHaveLength(3);

    // Restart on the same directory without the fault: a=1 or a=2 (the write answered 13 may or
    // may not have happened), never 3.
    const r = harness(dir);
    await init(r);
    await r.send({ type: 'read', key: 'a' });
    const rb = r.bodies();
    expect(rb[1]).toMatchObject({ type: 'read_ok' });
    expect([1, 2]).toContain(rb[1]!['value']);
    await r.server.end();
  });

  it('a failing background snapshot save is fatal, not logged and skipped', async () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    const h = harness(
      dir,
      (s) => {
        s.saveSnapshot = () => Promise.reject(new StorageError('IO', 'snap/0000000000000001-0000000000000005.snap.tmp-1-1', 'write failed: ENOSPC: no space left on device'));
        return s;
      },
      { snapshotThreshold: 3, snapshotJitter: 0 },
    );
    await init(h);
    for (let i = 0; i < 6; i++) await h.send({ type: 'write', key: 'k', value: i });
    await h.server.snapshotter.settle();
    await h.server.idle();
    expect(h.fatal).toHaveLength(1);
    expect(h.logs.filter((l) => l.startsWith('FATAL'))[0]).toMatch(/ENOSPC/);
    const answered = h.bodies().length;
    await h.send({ type: 'read', key: 'k' });
    expect(h.bodies()).toHaveLength(answered);
    await h.server.end();
  });
});
