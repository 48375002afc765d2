/**
 * Membership is recorded and checked (issue 7). Reproduced first: a node of a 3-node cluster
 * restarted with `init` listing five nodes answered init_ok without a warning (and, with two
 * empty nodes, formed a cluster in which the acknowledged writes read null); a second init with
 * another list on a running node answered init_ok and was ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/node/log.js';
import { defaultOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { openNodeStore } from '../../src/node/storage-adapter.js';
import { DataDir } from '../../src/storage/index.js';
import { Cluster, inProcessServer, noTimers, runServe, tmpDir } from './helpers.js';

type Out = { src: string; dest: string; body: Record<string, unknown> };
const line = (src: string, body: Record<string, unknown>): string => JSON.stringify({ src, dest: 'n1', body });
const init = (msgId: number, ids: string[]): string => line('c0', { type: 'init', msg_id: msgId, node_id: 'n1', node_ids: ids });

let dirs: string[] = [];
let cluster: Cluster | null = null;
afterEach(async () => {
  if (cluster) for (const id of cluster.ids) await cluster.kill9(id).catch(() => {});
  cluster = null;
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function dirServer(sink: MemorySink, dataDir: string, fatal: Error[]): RaftServer {
  const opts = { ...defaultOptions(), dataDir, fsync: false };
  return new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log: silentLogger,
    openStore: (id) => openNodeStore(opts, id, silentLogger),
    random: () => 0.5,
    timers: noTimers,
    onFatal: (e) => fatal.push(e),
  });
}

const replies = (sink: MemorySink): Map<unknown, Record<string, unknown>> =>
  new Map(sink.lines.map((l) => JSON.parse(l) as Out).map((m) => [m.body['in_reply_to'], m.body]));

describe('a running node: a second init', () => {
  it('with another list is refused (22, naming both lists); the same set in any order gets init_ok; the node goes on', async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, {}, noTimers);
    s.handleLine(init(1, ['n1']));
    s.handleLine(line('c1', { type: 'write', msg_id: 2, key: 'k', value: 1 }));
    s.handleLine(init(3, ['n1', 'n2', 'n3']));
    s.handleLine(init(4, ['n1']));
    s.handleLine(line('c1', { type: 'read', msg_id: 5, key: 'k' }));
    s.handleLine(init(6, ['n1', 'n1']));
    await s.idle();
    const r = replies(sink);
    expect(r.get(1)).toMatchObject({ type: 'init_ok' });
    expect(r.get(3)).toMatchObject({ type: 'error', code: 22 });
    expect(r.get(3)!['text']).toMatch(/\[n1, n2, n3\].*\[n1\]/);
    expect(r.get(4)).toMatchObject({ type: 'init_ok' });
    expect(r.get(5)).toMatchObject({ type: 'read_ok', value: 1 });
    expect(r.get(6)).toMatchObject({ type: 'error', code: 12 });
    expect(s.nodeIds).toEqual(['n1']);
    await s.end();
  });

  it('the same members in another order are the same membership', async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, { leaderWaitMs: 0 }, noTimers);
    s.handleLine(init(1, ['n1', 'n2', 'n3']));
    s.handleLine(init(2, ['n3', 'n1', 'n2']));
    await s.idle();
    expect(replies(sink).get(2)).toMatchObject({ type: 'init_ok' });
    await s.end();
  });
});

describe('a data directory records its members', () => {
  it('from the first init; a restart with other node_ids is refused (22), the node stops and sends nothing more', async () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    const fatal: Error[] = [];
    const a = new MemorySink();
    const s1 = dirServer(a, dir, fatal);
    s1.handleLine(init(1, ['n1']));
    s1.handleLine(line('c1', { type: 'write', msg_id: 2, key: 'k', value: 7 }));
    await s1.idle();
    await s1.end();
    expect(replies(a).get(2)).toMatchObject({ type: 'write_ok' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'))).toMatchObject({ nodeId: 'n1', members: ['n1'] });

    const b = new MemorySink();
    const s2 = dirServer(b, dir, fatal);
    s2.handleLine(init(1, ['n1', 'n2', 'n3']));
    s2.handleLine(line('c1', { type: 'read', msg_id: 2, key: 'k' }));
    s2.handleLine(line('n2', { type: 'raft_request_vote', msg_id: 3, term: 9, lastLogIndex: 99, lastLogTerm: 9 }));
    await s2.idle();
    await s2.end();
    expect(b.lines).toHaveLength(1);
    const refused = JSON.parse(b.lines[0]!) as Out;
    expect(refused.body).toMatchObject({ type: 'error', code: 22, in_reply_to: 1 });
    expect(refused.body['text']).toMatch(/records the members \[n1\], but init lists \[n1, n2, n3\]/);
    expect(fatal).toHaveLength(1);
    // Nothing changed: the directory still records [n1] and still serves it.
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'))).toMatchObject({ members: ['n1'] });
    const c = new MemorySink();
    const s3 = dirServer(c, dir, fatal);
    s3.handleLine(init(1, ['n1']));
    s3.handleLine(line('c1', { type: 'read', msg_id: 2, key: 'k' }));
    await s3.idle();
    await s3.end();
    expect(replies(c).get(2)).toMatchObject({ type: 'read_ok', value: 7 });
    expect(fatal).toHaveLength(1);
  });

  it('a directory written before members were recorded takes them from its next init', async () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    const dd = DataDir.create(dir, { nodeId: 'n1', fsync: false });
    dd.close();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'))).not.toHaveProperty('members');
    const sink = new MemorySink();
    const s = dirServer(sink, dir, []);
    s.handleLine(init(1, ['n1', 'n2']));
    await s.idle();
    await s.end();
    expect(replies(sink).get(1)).toMatchObject({ type: 'init_ok' });
    expect(DataDir.open(dir).meta.members).toEqual(['n1', 'n2']);
  });

  it('meta.json with a malformed members list is refused as not a data directory', () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    DataDir.create(dir, { nodeId: 'n1', fsync: false }).close();
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    for (const bad of [[], 'n1', ['n1', 'n1'], [1]]) {
      fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...meta, members: bad }));
      expect(() => DataDir.open(dir), JSON.stringify(bad)).toThrow(/members/);
    }
  });
});

describe('real processes', () => {
  it('a data directory from a 3-node run restarted with init listing five nodes is refused: error 22, a log line naming both lists, exit 1', async () => {
    const root = tmpDir();
    dirs.push(root);
    const ids = ['n1', 'n2', 'n3'];
    const c = (cluster = new Cluster(ids, () => ['--data-root', root, '--fsync', 'false', '--tick-ms', '10', '--election-timeout-ms', '300', '--heartbeat-ms', '50']));
    await c.start();
    for (let k = 0; k < 10; k++) expect((await c.requestOk({ type: 'write', key: k, value: k })).body.type).toBe('write_ok');
    expect(Object.values(await c.stop())).toEqual([0, 0, 0]);
    cluster = null;
    expect(JSON.parse(fs.readFileSync(path.join(root, 'n1', 'meta.json'), 'utf8'))).toMatchObject({ nodeId: 'n1', members: ids });

    const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const input = [
      init(1, five),
      line('c1', { type: 'read', msg_id: 2, key: 1 }),
      line('n4', { type: 'raft_request_vote', msg_id: 3, term: 99, lastLogIndex: 999, lastLogTerm: 99 }),
    ];
    const r = await runServe(input.join('\n') + '\n', ['--data-dir', path.join(root, 'n1')]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    const m = JSON.parse(r.lines[0]!) as Out;
    expect(m.body).toMatchObject({ type: 'error', code: 22, in_reply_to: 1 });
    expect(r.stderr).toMatch(/records the members \[n1, n2, n3\], but init lists \[n1, n2, n3, n4, n5\]/);
    // Nothing changed: the recorded members are the same, and the right init still works.
    expect(JSON.parse(fs.readFileSync(path.join(root, 'n1', 'meta.json'), 'utf8'))).toMatchObject({ members: ids });
    const ok = await runServe(init(1, ids) + '\n', ['--data-dir', path.join(root, 'n1')]);
    expect(ok.code).toBe(0);
    expect(ok.lines.map((l) => (JSON.parse(l) as Out).body['type'])).toEqual(['init_ok']);
  });
});
