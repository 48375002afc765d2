import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { openNodeStore } from '../../src/node/storage-adapter.js';
import type { NodeStore } from '../../src/node/store.js';
import type { Timers } from '../../src/node/timers.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RUN = path.join(ROOT, 'bin/run.js');

export type Msg = { src: string; dest: string; body: Record<string, unknown> & { type: string } };

/** `expected` matches `actual` as JSON values; the string "<any>" in `expected` matches any present value. */
export function jsonMatches(expected: unknown, actual: unknown): boolean {
  if (expected === '<any>') return actual !== undefined;
  if (expected === null || typeof expected !== 'object') return expected === actual;
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => jsonMatches(e, actual[i]));
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
  const ek = Object.keys(expected).sort();
  const ak = Object.keys(actual).sort();
  if (ek.join('\u0000') !== ak.join('\u0000')) return false;
  return ek.every((k) => jsonMatches((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k]));
}

export function tmpDir(prefix = 'raftsnap-node-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunResult {
  lines: string[];
  stderr: string;
  code: number | null;
  ms: number;
}

/** Pipe `input` into `raftsnap serve` and wait for it to exit by itself. */
export function runServe(input: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [RUN, 'serve', ...args], { env: { ...process.env, ...env }, cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`serve did not exit within 20 s; stderr: ${err}`));
    }, 20_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ lines: out.split('\n').filter((l) => l !== ''), stderr: err, code, ms: performance.now() - t0 });
    });
    p.stdin.end(input);
  });
}

interface NodeProc {
  id: string;
  proc: ChildProcessWithoutNullStreams;
  alive: boolean;
  stderr: string;
}

/**
 * A tiny Maelstrom-like router for process tests: N `serve` processes, messages between nodes
 * delivered (or dropped across a partition), client requests answered by in_reply_to.
 */
export class Cluster {
  readonly nodes = new Map<string, NodeProc>();
  private pendingReplies = new Map<string, (m: Msg) => void>();
  private nextClientMsg = 1;
  /** Pairs "a|b" whose messages are dropped. */
  private cut = new Set<string>();
  readonly stdoutGarbage: string[] = [];

  constructor(
    readonly ids: string[],
    private readonly argsFor: (id: string) => string[],
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  async start(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.startNode(id)));
  }

  async startNode(id: string): Promise<void> {
    const proc = spawn(process.execPath, [RUN, 'serve', ...this.argsFor(id)], { env: { ...process.env, ...this.env }, cwd: ROOT });
    const node: NodeProc = { id, proc, alive: true, stderr: '' };
    this.nodes.set(id, node);
    let buf = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.route(id, line);
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (node.stderr += d));
    proc.on('exit', () => (node.alive = false));
    proc.stdin.on('error', () => {});
    const r = await this.request(id, { type: 'init', node_id: id, node_ids: this.ids }, 10_000);
    if (r.body.type !== 'init_ok') throw new Error(`init of ${id} failed: ${JSON.stringify(r)}`);
  }

  private route(from: string, line: string): void {
    let m: Msg;
    try {
      m = JSON.parse(line) as Msg;
    } catch {
      this.stdoutGarbage.push(`${from}: ${line}`);
      return;
    }
    if (this.ids.includes(m.dest)) {
      if (this.cut.has(`${m.src}|${m.dest}`)) return;
      const n = this.nodes.get(m.dest);
      if (n && n.alive) n.proc.stdin.write(line + '\n');
      return;
    }
    const key = `${m.dest}|${String(m.body['in_reply_to'])}`;
    const f = this.pendingReplies.get(key);
    if (f) {
      this.pendingReplies.delete(key);
      f(m);
    }
  }

  /** Send a client request to `node` and wait for the answer (rejects on timeout). */
  request(node: string, body: Record<string, unknown>, timeoutMs = 5000, client = 'c1'): Promise<Msg> {
    const msgId = this.nextClientMsg++;
    return new Promise((resolve, reject) => {
      const key = `${client}|${msgId}`;
      const timer = setTimeout(() => {
        this.pendingReplies.delete(key);
        reject(new Error(`no answer from ${node} to ${JSON.stringify(body)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingReplies.set(key, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      const n = this.nodes.get(node);
      if (!n || !n.alive) {
        clearTimeout(timer);
        reject(new Error(`node ${node} is not running`));
        return;
      }
      n.proc.stdin.write(JSON.stringify({ src: client, dest: node, body: { ...body, msg_id: msgId } }) + '\n');
    });
  }

  /** Retry a request on any live node until it gets a non-error answer (or an error not in `retryCodes`). */
  async requestOk(body: Record<string, unknown>, opts: { nodes?: string[]; deadlineMs?: number; retryCodes?: number[] } = {}): Promise<Msg> {
    const deadline = Date.now() + (opts.deadlineMs ?? 15_000);
    const retry = new Set(opts.retryCodes ?? [0, 11, 13]);
    let last: unknown = null;
    let i = 0;
    while (Date.now() < deadline) {
      const live = (opts.nodes ?? this.ids).filter((id) => this.nodes.get(id)?.alive);
      const node = live[i++ % live.length]!;
      try {
        const r = await this.request(node, body, 2000);
        if (r.body.type !== 'error' || !retry.has(r.body['code'] as number)) return r;
        last = r.body;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(50);
    }
    throw new Error(`request ${JSON.stringify(body)} never succeeded; last: ${JSON.stringify(last)}`);
  }

  async stats(node: string): Promise<Record<string, unknown>> {
    return (await this.request(node, { type: 'get_stats' })).body;
  }

  async leader(deadlineMs = 10_000): Promise<string> {
    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline) {
      for (const id of this.ids) {
        const n = this.nodes.get(id);
        if (!n?.alive) continue;
        try {
          const s = await this.stats(id);
          if (s['role'] === 'leader') return id;
        } catch {
          /* try the next one */
        }
      }
      await sleep(50);
    }
    throw new Error('no leader elected');
  }

  /** Drop all messages between `a` and every other node, both ways. */
  isolate(a: string): void {
    for (const b of this.ids) if (b !== a) this.cut.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  kill9(id: string): Promise<void> {
    const n = this.nodes.get(id)!;
    return new Promise((resolve) => {
      if (!n.alive) return resolve();
      n.proc.once('exit', () => resolve());
      n.proc.kill('SIGKILL');
    });
  }

  /** Close every node's stdin and wait for clean exits; returns their exit codes. */
  async stop(): Promise<Record<string, number | null>> {
    const codes: Record<string, number | null> = {};
    await Promise.all(
      [...this.nodes.values()].map(
        (n) =>
          new Promise<void>((resolve) => {
            if (!n.alive) {
              codes[n.id] = n.proc.exitCode;
              return resolve();
            }
            const t = setTimeout(() => n.proc.kill('SIGKILL'), 10_000);
            n.proc.once('exit', (code) => {
              clearTimeout(t);
              codes[n.id] = code;
              resolve();
            });
            n.proc.stdin.end();
          }),
      ),
    );
    return codes;
  }

  stderrOf(id: string): string {
    return this.nodes.get(id)?.stderr ?? '';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Total size in bytes of the files under `dir`, and the number of WAL entries' files. */
export function dirSize(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

/** Timers that never fire: the test drives the server by messages alone. */
export const noTimers: Timers = { every: () => () => {}, now: () => 0, yield: () => Promise.resolve() };

/** Timers that never fire, whose clock passes a load slice at every look: a snapshot load yields after every step. */
export function slicingTimers(): Timers {
  let t = 0;
  return { every: () => () => {}, now: () => (t += 100), yield: () => new Promise((r) => setImmediate(r)) };
}

/**
 * A RaftServer in this process writing to `sink`, with `options` over the defaults. Without
 * `timers` it uses the real Node timers, as serve does.
 */
export function inProcessServer(
  sink: MemorySink,
  options: Partial<ServeOptions> = {},
  timers?: Timers,
  more: { wrapStore?: (s: NodeStore) => NodeStore; onFatal?: (e: Error) => void } = {},
): RaftServer {
  const opts: ServeOptions = { ...defaultOptions(), ...options };
  const wrap = more.wrapStore ?? ((s: NodeStore) => s);
  return new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log: silentLogger,
    openStore: async (id) => wrap(await openNodeStore(opts, id, silentLogger)),
    random: () => 0.5,
    ...(timers ? { timers } : {}),
    ...(more.onFatal ? { onFatal: more.onFatal } : {}),
  });
}
