/**
 * Forward identities in the replicated state machine (client sessions, Raft dissertation §6.3): a
 * duplicate of a forward delayed until after the leader restarted (so its in-memory memory of
 * forwards is gone) is not executed again, and is answered with the result of the first copy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvStore, SESSION_IDS_PER_ORIGIN, SESSION_ORIGINS, SessionTable } from '../../src/kv/index.js';
import { MemorySink } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { DataDir } from '../../src/storage/index.js';
import { loadDirState } from '../../src/tools/load.js';
import { inProcessServer, noTimers } from './helpers.js';


const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-sessions-'));
  dirs.push(d);
  return path.join(d, 'n1');
}

const node = (sink: MemorySink, dataDir: string): RaftServer => inProcessServer(sink, { dataDir, fsync: false }, noTimers);

const line = (src: string, body: Record<string, unknown>): string => JSON.stringify({ src, dest: 'n1', body });
type Msg = { dest: string; body: Record<string, unknown> };
const parse = (sink: MemorySink): Msg[] => sink.lines.map((l) => JSON.parse(l) as Msg);

async function send(s: RaftServer, src: string, body: Record<string, unknown>): Promise<void> {
  s.handleLine(line(src, body));
  await s.idle();
}

const INIT = { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] };
// A follower's forwards (its process named itself "p1"), sent before either was answered (so the
// second's low-water mark is 7): a write and a cas that succeeds once.
const FWD_WRITE = { type: 'raft_forward', msg_id: 7, origin: 'p1', request: { op: 'write', key: 'k', value: 1 } };
const FWD_CAS = { type: 'raft_forward', msg_id: 8, origin: 'p1', low: 7, request: { op: 'cas', key: 'c', from: 0, to: 1 } };

/** First incarnation: seed k and c, apply both forwards once; optionally snapshot; stop. */
async function firstRun(dir: string, snapshot: boolean): Promise<Msg[]> {
  const sink = new MemorySink();
  const s = node(sink, dir);
  await send(s, 'c0', INIT);
  await send(s, 'c1', { type: 'write', msg_id: 1, key: 'k', value: 0 });
  await send(s, 'c1', { type: 'write', msg_id: 2, key: 'c', value: 0 });
  await send(s, 'n2', FWD_WRITE);
  await send(s, 'n2', FWD_CAS);
  await send(s, 'c1', { type: 'write', msg_id: 3, key: 'other', value: 'x' });
  if (snapshot) {
    const applied = s.applied;
    await send(s, 'c0', { type: 'take_snapshot', msg_id: 2, up_to_index: applied });
    expect(s.core!.status().snapshot!.index).toBe(applied);
    expect(s.core!.status().firstIndex).toBe(applied + 1); // the forwards are no longer in the log
  }
  await s.end();
  return parse(sink);
}

/** Second incarnation on the same directory: later writes, then the delayed duplicates. */
async function secondRun(dir: string): Promise<Msg[]> {
  const sink = new MemorySink();
  const s = node(sink, dir);
  await send(s, 'c0', INIT);
  await send(s, 'c1', { type: 'write', msg_id: 10, key: 'k', value: 2 });
  await send(s, 'c1', { type: 'write', msg_id: 11, key: 'c', value: 5 });
  await send(s, 'n2', FWD_WRITE);
  await send(s, 'n2', FWD_CAS);
  await send(s, 'c1', { type: 'read', msg_id: 12, key: 'k' });
  await send(s, 'c1', { type: 'read', msg_id: 13, key: 'c' });
  await s.end();
  return parse(sink);
}

function forwardReplies(out: Msg[]): Map<unknown, unknown> {
  return new Map(out.filter((m) => m.dest === 'n2' && m.body['type'] === 'raft_forward_reply').map((m) => [m.body['in_reply_to'], m.body['outcome']]));
}

function expectNotReapplied(first: Msg[], second: Msg[]): void {
  const r1 = forwardReplies(first);
  expect(r1.get(7)).toEqual({ kind: 'result', result: { ok: true } });
  expect(r1.get(8)).toEqual({ kind: 'result', result: { ok: true } });
  // A later write is not overwritten by the duplicate; the cas is not run again (it would fail 22).
  expect(second.find((m) => m.body['in_reply_to'] === 12 && m.dest === 'c1')!.body).toMatchObject({ type: 'read_ok', value: 2 });
  expect(second.find((m) => m.body['in_reply_to'] === 13 && m.dest === 'c1')!.body).toMatchObject({ type: 'read_ok', value: 5 });
  // The duplicates are answered with the first copies' results.
  const r2 = forwardReplies(second);
  expect(r2.get(7)).toEqual(r1.get(7));
  expect(r2.get(8)).toEqual(r1.get(8));
}

describe('forward identities in the replicated state machine', () => {
  it('a duplicate delivered after the leader restarted is not applied again (log replay)', async () => {
    const dir = tempDir();
    const first = await firstRun(dir, false);
    const second = await secondRun(dir);
    expectNotReapplied(first, second);
    // The offline tools replay the log the same way.
    const st = loadDirState(dir).state;
    expect(new Map(st.pairs.map(([k, v]) => [k, v]))).toEqual(new Map<unknown, unknown>([['k', 2], ['c', 5], ['other', 'x']]));
  });

  it('the table survives a snapshot and recovery from it', async () => {
    const dir = tempDir();
    const first = await firstRun(dir, true);
    // The snapshot holds the table.
    const dd = DataDir.open(dir, { mode: 'read' });
    const rec = dd.recover({ repair: false });
    expect(rec.snapshot!.header.hasSessions).toBe(true);
    expect(rec.snapshot!.content.sessions).toEqual({
      forwards: [{ origin: 'n2/p1', last: expect.any(Number) as number, low: 7, ids: [7, 1] }],
    });
    const second = await secondRun(dir);
    expectNotReapplied(first, second);
  });

  it('a duplicate below its origin\'s low-water mark is not executed and gets an indefinite error', async () => {
    const dir = tempDir();
    const first = await firstRun(dir, false);
    const sink = new MemorySink();
    const s = node(sink, dir);
    await send(s, 'c0', INIT);
    await send(s, 'c1', { type: 'write', msg_id: 10, key: 'k', value: 2 });
    // The follower's forward 9 says every forward of p1 below 9 was answered.
    await send(s, 'n2', { type: 'raft_forward', msg_id: 9, origin: 'p1', low: 9, request: { op: 'write', key: 'z', value: 1 } });
    await send(s, 'n2', FWD_WRITE);
    await send(s, 'c1', { type: 'read', msg_id: 12, key: 'k' });
    expect(s.kv.sessions.resultOf({ origin: 'n2/p1', id: 7 })).toBeUndefined();
    await s.end();
    const out = parse(sink);
    expect(out.find((m) => m.body['in_reply_to'] === 12 && m.dest === 'c1')!.body).toMatchObject({ type: 'read_ok', value: 2 });
    expect(forwardReplies(out).get(7)).toMatchObject({ kind: 'error', code: 13 });
    expect(forwardReplies(first).get(7)).toEqual({ kind: 'result', result: { ok: true } });
  });

  it('forwards without an origin and client requests carry no identity (no sessions in snapshots)', async () => {
    const dir = tempDir();
    const sink = new MemorySink();
    const s = node(sink, dir);
    await send(s, 'c0', INIT);
    await send(s, 'c1', { type: 'write', msg_id: 1, key: 'k', value: 0 });
    await send(s, 'n2', { type: 'raft_forward', msg_id: 3, request: { op: 'write', key: 'k', value: 1 } });
    await send(s, 'c0', { type: 'take_snapshot', msg_id: 2, up_to_index: s.applied });
    expect(s.kv.sessions.size).toBe(0);
    await s.end();
    const rec = DataDir.open(dir, { mode: 'read' }).recover({ repair: false });
    expect(rec.snapshot!.header.hasSessions).toBe(false);
  });
});

describe('SessionTable', () => {
  const ok = { ok: true as const };
  it('dedups by identity, round-trips through JSON and a frozen view', () => {
    const kv = new KvStore();
    const e = (value: number, id: number) => ({ op: 'write', key: 'k', value, session: { origin: 'a/o', id } });
    expect(kv.applyEntry(e(1, 1), 1)).toEqual(ok);
    expect(kv.applyEntry({ op: 'write', key: 'k', value: 2 }, 2)).toEqual(ok);
    expect(kv.applyEntry(e(1, 1), 3)).toEqual(ok);
    expect(kv.get('k')).toBe(2);
    // A cas that failed is answered with the same error, even once it would succeed.
    const cas = { op: 'cas', key: 'k', from: 3, to: 4, session: { origin: 'a/o', id: 2 } };
    const failed = kv.applyEntry(cas, 4);
    expect(failed).toMatchObject({ ok: false, code: 22 });
    kv.applyEntry({ op: 'write', key: 'k', value: 3 }, 5);
    expect(kv.applyEntry(cas, 6)).toEqual(failed);
    expect(kv.get('k')).toBe(3);
    // Reads carry no identity: executed again (they change nothing).
    expect(kv.applyEntry({ op: 'read', key: 'k', session: { origin: 'a/o', id: 9 } }, 6)).toEqual({ ok: true, value: 3 });
    expect(kv.sessions.resultOf({ origin: 'a/o', id: 9 })).toBeUndefined();
    const view = kv.freeze();
    kv.applyEntry(e(9, 3), 7);
    const restored = KvStore.fromEntries(view.entries(), view.sessions);
    view.release();
    expect(restored.get('k')).toBe(3);
    expect(restored.applyEntry(cas, 7)).toEqual(failed);
    expect(restored.applyEntry(e(1, 1), 8)).toEqual(ok);
    expect(restored.get('k')).toBe(3);
    expect(restored.applyEntry(e(9, 3), 9)).toEqual(ok); // not in the frozen table: executed
    expect(restored.get('k')).toBe(9);
    // reset without sessions empties the table
    restored.reset([]);
    expect(restored.sessions.size).toBe(0);
  });

  it('is bounded per origin and in origins, deterministically', () => {
    const t = new SessionTable();
    let index = 0;
    for (let id = 0; id < SESSION_IDS_PER_ORIGIN + 5; id++) t.record({ origin: 'a', id }, ++index, { ok: true });
    expect(t.resultOf({ origin: 'a', id: 4 })).toBeUndefined();
    expect(t.lookup({ origin: 'a', id: 4 })).toEqual({ kind: 'new' }); // evicted by the bound: not stale
    expect(t.resultOf({ origin: 'a', id: 5 })).toEqual({ ok: true });
    for (let o = 0; o < SESSION_ORIGINS; o++) t.record({ origin: `o${o}`, id: 0 }, ++index, { ok: true });
    expect(t.size).toBe(SESSION_ORIGINS);
    expect(t.resultOf({ origin: 'a', id: 5 })).toBeUndefined(); // least recently used origin evicted
    const again = SessionTable.fromJson(t.toJson());
    expect(again.toJson()).toEqual(t.toJson());
    again.record({ origin: 'o0', id: 1 }, ++index, { ok: true }); // o0 becomes most recent
    again.record({ origin: 'new', id: 0 }, ++index, { ok: true }); // evicts o1
    expect(again.resultOf({ origin: 'o0', id: 0 })).toEqual({ ok: true });
    expect(again.resultOf({ origin: 'o1', id: 0 })).toBeUndefined();
    expect(SessionTable.fromJson({ c1: { seq: 4 } }).size).toBe(0); // other shapes: empty
    // failed results and id deltas (also negative) round-trip
    const f = new SessionTable();
    f.record({ origin: 'x', id: 10 }, 1, { ok: true });
    f.record({ origin: 'x', id: 4 }, 2, { ok: false, code: 22, text: 'expected 1, but had 2' });
    f.record({ origin: 'x', id: 30 }, 3, { ok: false, code: 20, text: 'key 1 does not exist' });
    expect(f.toJson()).toEqual({ forwards: [{ origin: 'x', last: 3, low: 0, ids: [10, -6, 26], failed: [[4, 22, 'expected 1, but had 2'], [30, 20, 'key 1 does not exist']] }] });
    const g = SessionTable.fromJson(f.toJson());
    expect(g.resultOf({ origin: 'x', id: 4 })).toEqual({ ok: false, code: 22, text: 'expected 1, but had 2' });
    expect(g.resultOf({ origin: 'x', id: 10 })).toEqual({ ok: true });
    expect(g.toJson()).toEqual(f.toJson());
    // the low-water mark forgets what is below it; ids below it are stale
    g.record({ origin: 'x', id: 40, low: 10 }, 4, { ok: true });
    expect(g.lookup({ origin: 'x', id: 4 })).toEqual({ kind: 'stale' });
    expect(g.resultOf({ origin: 'x', id: 10 })).toEqual({ ok: true });
    expect(SessionTable.fromJson(g.toJson()).toJson()).toEqual({ forwards: [{ origin: 'x', last: 4, low: 10, ids: [10, 20, 10], failed: [[30, 20, 'key 1 does not exist']] }] });
    const kv = new KvStore();
    kv.sessions = SessionTable.fromJson(g.toJson());
    expect(kv.applyEntry({ op: 'write', key: 'k', value: 1, session: { origin: 'x', id: 5 } }, 5)).toBeNull();
    expect(kv.has('k')).toBe(false);
  });
});
