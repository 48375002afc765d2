/**
 * One raftsnap node for the crash-consistency check (crash-check.ts): a single-node cluster, the
 * real RaftServer over the real DiskStorage over a SimFs, driven one request at a time without
 * timers (a single-node server needs none); the check's workload and its sequential specification;
 * and the recovery of one crash state by a fresh process.
 */
import type { Logger } from '../node/log.js';
import { defaultOptions, type ServeOptions } from '../node/options.js';
import { Outbox, type LineSink } from '../node/protocol.js';
import { RaftServer } from '../node/server.js';
import { StorageNodeStore } from '../node/storage-adapter.js';
import type { Timers } from '../node/timers.js';
import type { Json } from '../raft/types.js';
import type { FileSystem } from '../storage/fs.js';
import { DiskStorage } from '../storage/node-storage.js';
import { Random } from './random.js';
import type { SimFs } from './sim-fs.js';

/** One client operation of the workload (keys are integers, values strings). */
export type Op = { op: 'write'; key: number; value: string } | { op: 'cas'; key: number; from: string; to: string };

/** The node's data directory; it does not exist before the first start. */
export const DIR = '/data/n1';
const NODE = 'n1';
/** The lock pid of the workload's process. */
export const FIRST_PID = 1;

/** Ticks and clocks that never fire: a single-node server needs no timers, and the check must not depend on time. */
const stillTimers: Timers = { every: () => () => {}, now: () => 0, yield: () => Promise.resolve() };

interface Reply {
  inReplyTo: number;
  body: Record<string, unknown>;
}

class ReplySink implements LineSink {
  readonly replies = new Map<number, Record<string, unknown>>();
  onReply: ((r: Reply) => void) | null = null;
  write(text: string): void {
    for (const l of text.split('\n')) {
      if (l === '') continue;
      const m = JSON.parse(l) as { body: Record<string, unknown> };
      const id = m.body['in_reply_to'];
      if (typeof id !== 'number') continue;
      this.replies.set(id, m.body);
      this.onReply?.({ inReplyTo: id, body: m.body });
    }
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Host {
  server: RaftServer;
  sink: ReplySink;
  warnings: string[];
  fatal: Error[];
  /** Send one request and wait until the node (and a background snapshot) is done with it. */
  request(body: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
}

/** The node's options: count-based snapshots without jitter, the given threshold, trailing log, retain and segment size. */
export function serveOptions(o: { snapshotThreshold: number; trailingLogs: number; retain: number; segmentBytes: number }): ServeOptions {
  return {
    ...defaultOptions(),
    dataDir: DIR,
    fsync: true,
    snapshotThreshold: o.snapshotThreshold,
    snapshotThresholdBytes: 0,
    snapshotJitter: 0,
    trailingLogs: o.trailingLogs,
    retain: o.retain,
    segmentBytes: o.segmentBytes,
    logLevel: 'quiet',
  };
}

/** A RaftServer process on `fs` whose lock pid is `pid` (every other pid counts as dead). */
export function host(fs: FileSystem, opts: ServeOptions, pid: number): Host {
  const sink = new ReplySink();
  const warnings: string[] = [];
  const fatal: Error[] = [];
  const log: Logger = { info() {}, debug() {}, warn: (m) => warnings.push(m) };
  let msgId = 1;
  const server = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log,
    timers: stillTimers,
    random: () => 0.5,
    onFatal: (e) => fatal.push(e),
    openStore: (id) => {
      try {
        const ds = DiskStorage.open(DIR, { fs, fsync: true, retain: opts.retain, segmentBytes: opts.segmentBytes, pid, isPidAlive: (p) => p === pid, ...(id !== null ? { nodeId: id } : {}) });
        return Promise.resolve(new StorageNodeStore(ds, true, DIR, log, id, () => Promise.resolve()));
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    },
  });
  return {
    server,
    sink,
    warnings,
    fatal,
    async request(body) {
      const id = msgId++;
      server.handleLine(JSON.stringify({ src: 'c1', dest: NODE, body: { ...body, msg_id: id } }));
      await server.idle();
      await server.snapshotter.settle();
      await server.idle();
      return sink.replies.get(id);
    },
  };
}

export const INIT = { type: 'init', node_id: NODE, node_ids: [NODE] };

/** The workload: writes of fresh values and cas operations (about half of them succeed). */
export function makeWorkload(n: number, keys: number, seed: number, valueChars: number): Op[] {
  const rng = new Random(seed);
  const state = new Map<number, string>();
  const ops: Op[] = [];
  const value = (i: number): string => {
    let s = `v${i}-`;
    while (s.length < valueChars) s += rng.nextU32().toString(36);
    return s.slice(0, Math.max(valueChars, `v${i}-`.length));
  };
  for (let i = 0; i < n; i++) {
    const key = rng.int(keys);
    const cur = state.get(key);
    if (i >= 2 && rng.chance(0.35)) {
      // cas: from the current value (succeeds), or from a stale or missing one (fails).
      const from = cur !== undefined && rng.chance(0.6) ? cur : `stale-${i}`;
      const to = value(i);
      ops.push({ op: 'cas', key, from, to });
      if (from === cur) state.set(key, to);
    } else {
      const v = value(i);
      ops.push({ op: 'write', key, value: v });
      state.set(key, v);
    }
  }
  return ops;
}

/** The key -> value state after each prefix of the operations (index p: after the first p), as canonical strings, and each operation's expected answer. */
export function specStates(ops: readonly Op[], keys: number): { states: string[]; replies: Array<'ok' | 'fail'> } {
  const m = new Map<number, string>();
  const enc = (): string => JSON.stringify(Array.from({ length: keys }, (_, k) => m.get(k) ?? null));
  const states = [enc()];
  const replies: Array<'ok' | 'fail'> = [];
  for (const o of ops) {
    if (o.op === 'write') {
      m.set(o.key, o.value);
      replies.push('ok');
    } else if (m.get(o.key) === o.from) {
      m.set(o.key, o.to);
      replies.push('ok');
    } else replies.push('fail');
    states.push(enc());
  }
  return { states, replies };
}

/** The request body of an operation. */
export function opBody(o: Op): Record<string, unknown> {
  return o.op === 'write' ? { type: 'write', key: o.key, value: o.value } : { type: 'cas', key: o.key, from: o.from, to: o.to };
}

/** What the restart on one crash state found. */
export interface Recovered {
  /** Why the restart did not start (its answer to init), or null. */
  refused: string | null;
  /** Canonical key -> value state read back, or null when a read failed. */
  state: string | null;
  readProblem: string | null;
  newWrite: string | null;
  recheck: string | null;
  warnings: string[];
}

export interface RecoverSetup {
  /** The FileSystem the node gets for a SimFs (identity, or a test's wrapper). */
  wrap: (fs: SimFs) => FileSystem;
  opts: ServeOptions;
  keys: number;
  /** Lock pid of the restarted process. */
  pid: number;
  /** The second restart (recheck) has the same pid again, not the next one. */
  samePid: boolean;
  /** After the new write, crash (clean) and recover again. */
  recheck: boolean;
  /** Called before every mutating call the restart makes until it has answered init: the recovery itself. */
  onRecoveryCall?: (fs: SimFs) => void;
}

/**
 * Recover one crash state as a new process: start (init), read every key, write a new one, and
 * with `recheck` crash (clean) and recover once more, which must find the same state and the new
 * write.
 */
export async function recoverState(fs: SimFs, setup: RecoverSetup): Promise<Recovered> {
  const { wrap, opts, keys, pid, samePid, recheck } = setup;
  const during = setup.onRecoveryCall;
  if (during) fs.onCall = () => during(fs);
  const h = host(wrap(fs), opts, pid);
  const out: Recovered = { refused: null, state: null, readProblem: null, newWrite: null, recheck: null, warnings: h.warnings };
  const init = await h.request(INIT);
  fs.onCall = null;
  if (init?.['type'] !== 'init_ok') {
    out.refused = `${h.fatal[0]?.message ?? JSON.stringify(init)}`;
    return out;
  }
  const readAll = async (hh: Host): Promise<{ state: string | null; problem: string | null }> => {
    const vals: Json[] = [];
    for (let k = 0; k < keys; k++) {
      const r = await hh.request({ type: 'read', key: k });
      if (r?.['type'] === 'read_ok') vals.push((r['value'] ?? null) as Json);
      else if (r?.['type'] === 'error' && r['code'] === 20) vals.push(null);
      else return { state: null, problem: `read of key ${k} answered ${JSON.stringify(r)}${hh.fatal[0] ? ` (${hh.fatal[0].message})` : ''}` };
    }
    return { state: JSON.stringify(vals), problem: null };
  };
  ({ state: out.state, problem: out.readProblem } = await readAll(h));
  if (out.state === null) return out;
  const w = await h.request({ type: 'write', key: 'probe', value: 'after-crash' });
  if (w?.['type'] !== 'write_ok') {
    out.newWrite = `write after recovery answered ${JSON.stringify(w)}${h.fatal[0] ? ` (${h.fatal[0].message})` : ''}`;
    return out;
  }
  if (!recheck) {
    await h.server.end();
    return out;
  }
  // The machine crashes without the process closing anything; a clean crash keeps what was made
  // durable. The restart is a new process: a new FileSystem object (what this process held dies
  // with it) and the next pid, or the same one.
  fs.crash('clean');
  const h2 = host(wrap(fs.clone()), opts, samePid ? pid : pid + 1);
  const init2 = await h2.request(INIT);
  if (init2?.['type'] !== 'init_ok') {
    out.recheck = `second restart refused: ${h2.fatal[0]?.message ?? JSON.stringify(init2)}`;
    return out;
  }
  const again = await readAll(h2);
  const probe = await h2.request({ type: 'read', key: 'probe' });
  if (again.state !== out.state) out.recheck = `second restart: state ${again.state ?? again.problem} differs from the first restart's ${out.state}`;
  else if (probe?.['type'] !== 'read_ok' || probe['value'] !== 'after-crash') out.recheck = `second restart: the write acknowledged after the first restart reads ${JSON.stringify(probe)}`;
  await h2.server.end();
  return out;
}
