/**
 * The deterministic simulator: N SimNodes (the real serve driver, RaftServer, over the real
 * storage on a simulated file system, SimFs, per node), a
 * SimNetwork carrying Maelstrom lines, lin-kv clients speaking the real protocol and recording a
 * history, and a nemesis, all driven by one event queue on a simulated clock and one seeded
 * Random. After every event the servers' async work runs to completion (`settle`, microtasks
 * only); invariants are checked after every step; at the end the network heals, every node comes
 * back, the cluster must converge, and the history must be linearizable.
 */
import { createHash } from 'node:crypto';
import { checkHistory, type HistoryEvent } from '../check/index.js';
import { canonicalJson } from '../kv/keys.js';
import type { Entry, HardState, Json, NodeId, SnapshotMeta } from '../raft/types.js';
import type { RecoveredState } from '../node/store.js';
import { InvariantViolation, Invariants } from './invariants.js';
import { type DiskFault, type DiskFaultCode, injectDiskFault, injectedErrno } from './disk-faults.js';
import { type NodeHost, type NodeObserver, SimNode, serveOptions } from './node.js';
import { RELIABLE, SimNetwork } from './network.js';
import { SimClients } from './clients.js';
import { Nemesis } from './nemesis.js';
import { EventQueue } from './queue.js';
import { Random } from './random.js';
import { SimFs } from './sim-fs.js';
import { type Failure, LIN_UNKNOWN, type SimConfig, type SimResult } from './config.js';

interface Timer {
  ms: number;
  fn: () => void;
  cancelled: boolean;
}

/** An event of the simulation's queue. */
export type Ev =
  | { k: 'tick'; node: SimNode; inc: number; timer: Timer }
  | { k: 'msg'; to: SimNode; from: NodeId; line: string }
  | { k: 'req'; node: SimNode; client: number; line: string }
  | { k: 'resp'; node: NodeId; client: number; line: string; body: Reply }
  | { k: 'timeout'; client: number; reqId: number }
  | { k: 'client'; client: number }
  | { k: 'fn'; label: string; fn: () => void | Promise<void> };

/** A reply body as a node wrote it. */
export interface Reply {
  type: string;
  in_reply_to?: number;
  value?: Json;
  code?: number;
  text?: string;
}

const END = Symbol('end');

const DEST = '","dest":"';

/**
 * The destination of a line an Outbox wrote (`{"src":"…","dest":"…",…}`: node and client ids
 * contain no quotes or escapes, so the first `","dest":"` ends the source), without parsing it.
 */
function destOf(line: string): string {
  const i = line.indexOf(DEST);
  if (i < 0 || !line.startsWith('{"src":"')) return (JSON.parse(line) as { dest: string }).dest;
  const start = i + DEST.length;
  return line.slice(start, line.indexOf('"', start));
}

export class Simulation implements NodeHost {
  readonly rng: Random;
  readonly net: SimNetwork;
  readonly nodes: SimNode[] = [];
  readonly invariants: Invariants;
  readonly history: HistoryEvent[] = [];
  readonly queue = new EventQueue<Ev>();
  readonly trace: string[] = [];
  time = 0;
  step = 0;
  /** Main phase: faults and new client operations. */
  mainPhase = true;
  readonly counters = { crashes: 0, crashPointsFired: 0, clockSkews: 0, diskFaults: 0, diskFaultStops: 0 };
  /**
   * Clock rate per node: how many ms of simulated (real) time one ms of the node's own clock takes.
   * 3 = its clock runs 3x slower (ticks and sleeps take 3x as long), 1/3 = 3x faster. Absent: 1.
   * A property of the machine, so it survives the node's restarts; quiesce resets it.
   */
  private readonly clockRates = new Map<NodeId, number>();
  private readonly hash = createHash('sha256');
  private readonly clients: SimClients;
  private readonly nemesis: Nemesis;
  private readonly faultRng: Random;
  /** Scenario hooks called at the end (may throw InvariantViolation). */
  readonly endChecks: Array<() => void> = [];
  /** Scenario hooks: see every node-to-node line as it is sent (before the network decides its fate). */
  readonly taps: Array<(from: SimNode, to: SimNode, line: string) => void> = [];
  /** Scenario hooks: see every reply a node sends to a client (`dest` cN) as it arrives there. */
  readonly replyTaps: Array<(from: NodeId, dest: string, body: Reply) => void> = [];
  /**
   * Scenario hooks: a line for which one returns false is lost when it is sent (counted as a
   * partition drop), even if it would arrive after the link is back. The network draws its fate
   * all the same, so a filter changes nothing else in the run.
   */
  readonly sendFilters: Array<(from: SimNode, to: SimNode, line: string) => boolean> = [];
  /** The first invariant violated inside a server's code (which would swallow and log it). */
  private violation: Error | null = null;
  readonly observer: NodeObserver;

  constructor(readonly cfg: SimConfig) {
    const root = new Random(cfg.seed);
    this.rng = root.fork();
    const netRng = root.fork();
    this.nemesis = new Nemesis(this, root.fork());
    this.clients = new SimClients(this, root.fork());
    this.faultRng = root.fork();
    const ids = Array.from({ length: cfg.nodes }, (_, i) => `n${i + 1}`);
    this.net = new SimNetwork(ids, netRng, cfg.link);
    this.invariants = new Invariants(() => this.nodes);
    this.observer = this.guardedObserver(this.invariants);
    const opts = serveOptions(cfg.node, cfg.tickMs, cfg.disk);
    for (const id of ids) {
      const b = id === 'n1' ? cfg.broken : undefined;
      const broken = b === undefined ? {} : b === 'ack-before-persist' ? { ackBeforePersist: true } : { storage: b };
      // Each node's disk: its own draws (failed fsyncs, short writes), mtimes in simulated time, no trace (speed).
      const fs = new SimFs({ rng: this.faultRng.fork(), now: () => Math.floor(this.time), trace: false, crash: cfg.disk.crash });
      this.nodes.push(new SimNode(id, ids, fs, cfg.node, cfg.disk, this, opts, broken));
    }
  }

  /**
   * The observer the nodes call. Its hooks run inside the server's Ready loop, whose error
   * handling would log and swallow a violation: keep the first one, rethrown by `settle`.
   */
  private guardedObserver(inv: Invariants): NodeObserver {
    const g = <A extends unknown[]>(f: (...a: A) => void) => (...a: A): void => {
      try {
        f.apply(inv, a);
      } catch (e) {
        if (!this.violation) this.violation = e as Error;
        throw e;
      }
    };
    return {
      onRecovered: g((n: SimNode, r: RecoveredState) => inv.onRecovered(n, r)),
      onPersisted: g((n: SimNode, rd: { entries: Entry[]; hardState: HardState | null; prevTerm?: number | undefined }) => inv.onPersisted(n, rd)),
      onApplied: g((n: SimNode, e: Entry) => inv.onApplied(n, e)),
      onSnapshotReceived: g((n: SimNode, m: SnapshotMeta) => inv.onSnapshotReceived(n, m)),
      onSnapshotRestored: g((n: SimNode, m: SnapshotMeta, p: Iterable<readonly [Json, Json]>) => inv.onSnapshotRestored(n, m, p)),
      onSnapshotTaken: g((n: SimNode, m: SnapshotMeta, p: Array<[Json, Json]>) => inv.onSnapshotTaken(n, m, p)),
      onOutputAfterFailure: g((n: SimNode, line: string, f: Error) => inv.onOutputAfterFailure(n, line, f)),
    };
  }

  now(): number {
    return this.time;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Deliver `line` from `from` to `to` after `delay` ms, as the network would (a scenario's extra copy). */
  inject(from: NodeId, to: SimNode, line: string, delay = 0): void {
    this.queue.push(this.time + Math.max(0, delay), { k: 'msg', to, from, line });
  }

  /**
   * A scenario's own request to `node` from client `src` (not one of the simulated clients, whose
   * operations go into the history): delivered after a client delay; the reply reaches `replyTaps`.
   */
  request(node: SimNode, src: string, body: Record<string, Json>): void {
    const line = JSON.stringify({ src, dest: node.id, body });
    this.queue.push(this.time + this.net.clientFate(), { k: 'req', node, client: Number(src.slice(1)), line });
  }

  at(delay: number, label: string, fn: () => void | Promise<void>): void {
    this.queue.push(this.time + Math.max(0, delay), { k: 'fn', label, fn });
  }

  // -------------------------------------------------------------------------------------------
  // NodeHost

  /** A line a node wrote: to another node through the network, to a client, or to the simulator. */
  route(node: SimNode, line: string): void {
    const dest = destOf(line);
    const to = this.nodes.find((n) => n.id === dest);
    if (to) {
      for (const t of this.taps) t(node, to, line);
      const fate = this.net.fate();
      if (this.sendFilters.length > 0 && !this.sendFilters.every((f) => f(node, to, line))) {
        this.net.stats.partitionDrops += fate.length;
        return;
      }
      for (const d of fate) this.queue.push(this.time + d, { k: 'msg', to, from: node.id, line });
      return;
    }
    const m = JSON.parse(line) as { dest: string; body: Reply };
    if (m.dest.startsWith('c')) {
      this.queue.push(this.time + this.net.clientFate(), { k: 'resp', node: node.id, client: Number(m.dest.slice(1)), line, body: m.body });
      return;
    }
    // The answer to `init`: judged after the step (checkErrors), with the node's FATAL if it stopped.
    if (m.dest === 'sim') node.initReply = m.body;
  }

  every(node: SimNode, ms: number, fn: () => void): () => void {
    const timer: Timer = { ms, fn, cancelled: false };
    this.queue.push(this.time + this.rng.next() * ms * this.clockRate(node), { k: 'tick', node, inc: node.incarnation, timer });
    return () => {
      timer.cancelled = true;
    };
  }

  sleep(node: SimNode, ms: number): Promise<void> {
    const inc = node.incarnation;
    return new Promise((resolve) => {
      this.at(ms * this.clockRate(node), `${node.id} background`, () => {
        if (!node.up || node.incarnation !== inc) return; // the process died: never wakes up
        if (node.paused) node.held.push(resolve);
        else resolve();
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Running the servers' async work

  private anyBusy(): boolean {
    for (const n of this.nodes) if (!n.quiescent) return true;
    return false;
  }

  /** Some node waits for a WAL fsync: its completion may be on its way in a promise chain. */
  private anyParked(): boolean {
    for (const n of this.nodes) if (n.waitingOnDisk) return true;
    return false;
  }

  /**
   * Run the servers' queued async work to completion. Everything they await resolves in
   * microtasks (SimFs calls are synchronous; a background snapshot or a WAL fsync waiting for
   * simulated time counts as quiescent), so this depends on the seed alone. A node that looks
   * quiescent may still have a promise chain to run (an fsync that just completed, on its way to
   * the server): the last check comes after a macrotask hop, which runs every microtask first.
   * Then the processes that died are taken down: at a crash point (their disk crashes), or
   * stopped by themselves (fail-stop).
   */
  async settle(): Promise<void> {
    for (let i = 0; ; i++) {
      if (i > 1_000_000) throw new Error('a node did not settle');
      if (this.anyBusy()) {
        await null;
        continue;
      }
      if (!this.anyParked()) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.anyBusy()) break;
    }
    this.reap();
    this.checkErrors();
  }

  /** Take down the processes that died while their work ran. */
  private reap(): void {
    for (const n of this.nodes) {
      if (!n.up) continue;
      if (n.dying) {
        const at = n.dying;
        this.counters.crashPointsFired++;
        this.crash(n, true, `crash point: file-system call ${at.call}, ${at.kind} ${at.path}`);
        this.scheduleRestart(n, this.faultRng.range(20, 300));
      } else if (n.fatal && this.fatalExpected(n, n.fatal)) {
        this.stopped(n, n.fatal);
      }
    }
  }

  /** A FATAL is expected when an injected disk fault caused it, or when the scenario said so. */
  private fatalExpected(n: SimNode, err: Error): boolean {
    if (n.expectFatal && n.expectFatal.test(err.message)) return true;
    return n.fault !== null && injectedErrno(err) !== null;
  }

  /**
   * A node stopped itself after an injected fault (or a refusal the scenario expects): the process
   * exits. The disk keeps its page cache (a process exit is no machine crash), or now and then the
   * machine crashes too; either way it is restarted later with the fault cleared.
   */
  private stopped(n: SimNode, err: Error): void {
    const r = this.faultRng;
    this.invariants.beforeCrash(n);
    const crashToo = r.chance(0.3);
    if (crashToo) n.crash(r);
    else n.exit();
    if (n.fault) this.counters.diskFaultStops++;
    this.note(`${n.id} STOPPED (${err.message.split('\n')[0]})${crashToo ? ', machine crash too' : ''}`);
    if (n.expectFatal) return; // the scenario restarts it
    this.scheduleRestart(n, r.range(this.cfg.faultRestartMs[0], this.cfg.faultRestartMs[1]));
  }

  private checkErrors(): void {
    if (this.violation) throw this.violation;
    for (const n of this.nodes) {
      if (n.errors.length > 0) throw new InvariantViolation('driver-error', n.errors[0]!.message);
      if (n.up && !n.fatal && n.initReply && n.initReply.type !== 'init_ok') throw new InvariantViolation('driver-error', `${n.id}: init answered ${JSON.stringify(n.initReply)}`);
      if (n.fatal && n.up) {
        // An unexpected stop: storage that cannot be opened or recovered, or any other failure.
        const why = n.fatalLines[0] ?? n.fatal.message;
        throw new InvariantViolation(n.core ? 'fatal' : 'recovery', `${n.id}: ${why}`);
      }
      const f = n.storage?.failure;
      if (f && n.up && !n.fatal) throw new InvariantViolation('fail-stop', `${n.id}: its storage failed (${f.message}) but it did not stop`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Node lifecycle

  /**
   * The node's machine crashes: its process dies and its disk keeps what a crash leaves (`tear`:
   * a drawn prefix of every file's and directory's unsynced changes, the last kept sector of a
   * file possibly garbled; otherwise exactly what was durable).
   */
  crash(node: SimNode, tear: boolean, why = 'crash'): void {
    if (!node.up) return;
    this.invariants.beforeCrash(node);
    node.crash(tear ? this.faultRng : 'clean');
    this.counters.crashes++;
    this.note(`${node.id} CRASH (${why}${tear ? ', torn' : ''})`);
  }

  scheduleRestart(node: SimNode, delay: number): void {
    const inc = node.incarnation;
    this.at(delay, `restart ${node.id}`, async () => {
      if (node.up || node.incarnation !== inc) return;
      await this.restart(node);
    });
  }

  /**
   * Start a new process on the node's disk (the fault that stopped it cleared), send it `init`
   * (with `nodeIds`, default the cluster's members) and let it recover. In the main phase it may
   * be armed to crash at one of its first file-system calls (`restartCrash`).
   */
  async restart(node: SimNode, nodeIds?: readonly NodeId[]): Promise<void> {
    if (node.up) return;
    this.clearFault(node);
    if (this.mainPhase && this.cfg.restartCrash > 0 && this.faultRng.chance(this.cfg.restartCrash)) {
      // At one of its first calls (lock, meta.json, recovery's repairs), or aimed at the repairs
      // themselves (cutting a torn tail, keeping its copy), which only some starts make. Armed
      // before the start: the directory is opened as soon as `init` arrives.
      const r = this.faultRng;
      if (r.chance(0.5)) node.armCrash(1 + r.int(12));
      else node.aimCrash('recovery', 1 + r.int(3));
    }
    node.start(nodeIds);
    this.note(`${node.id} START (incarnation ${node.incarnation})`);
    await this.settle();
  }

  /**
   * Inject a disk fault into `node`'s SimFs (disk-faults.ts; `soon`: one that fires within a few
   * Readies). The node must stop at the first storage call that fails; it is restarted later with
   * the fault cleared.
   */
  injectFault(node: SimNode, code: DiskFaultCode, r: Random = this.faultRng, soon = false): DiskFault {
    this.clearFault(node);
    const f = injectDiskFault(node.fs, code, r, soon);
    node.fault = f;
    this.counters.diskFaults++;
    this.note(`${node.id} FAULT ${f.what}`);
    return f;
  }

  clearFault(node: SimNode): void {
    if (!node.fault) return;
    node.fault.clear();
    this.note(`${node.id} FAULT cleared (${node.fault.what})`);
    node.fault = null;
  }

  /** How many ms of simulated time one ms of `node`'s clock takes (see `clockRates`). */
  clockRate(node: SimNode): number {
    return this.clockRates.get(node.id) ?? 1;
  }

  /**
   * Skew `node`'s clock: its timers (the driver's tick, a background snapshot's wait) run `rate`
   * times as long (3: 3x slower, 1/3: 3x faster); 1 restores it. The next tick already queued keeps
   * its time. The node's `now()` is not skewed: the driver reads it only for request deadlines
   * and the leader wait, and Raft's timing lives in ticks.
   */
  setClockRate(node: SimNode, rate: number): void {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new Error(`clock rate must be positive, got ${rate}`);
    if (rate === this.clockRate(node)) return;
    if (rate === 1) {
      this.clockRates.delete(node.id);
      this.note(`${node.id} CLOCK normal`);
    } else {
      this.clockRates.set(node.id, rate);
      this.counters.clockSkews++;
      this.note(`${node.id} CLOCK ${rate > 1 ? `${fmtRate(rate)}x slower` : `${fmtRate(1 / rate)}x faster`}`);
    }
  }

  pause(node: SimNode): void {
    if (!node.up || node.paused) return;
    node.paused = true;
    this.note(`${node.id} PAUSE`);
  }

  resume(node: SimNode): void {
    if (!node.up || !node.paused) return;
    node.paused = false;
    this.note(`${node.id} RESUME`);
    const held = node.held.splice(0);
    for (const f of held) f();
  }

  /** Point the first `count` simulated clients at `node`: their next operations go there. */
  aimClients(node: SimNode, count: number): void {
    this.clients.aim(this.nodes.indexOf(node), count);
  }

  /** The current leader with the highest term among live nodes, if any. */
  leader(): SimNode | null {
    let best: SimNode | null = null;
    let bt = -1;
    for (const n of this.nodes) {
      const st = n.status();
      if (n.up && st && st.role === 'leader' && st.term > bt) {
        best = n;
        bt = st.term;
      }
    }
    return best;
  }

  /** End of the main phase: heal, bring every node back, stop new operations. */
  async quiesce(): Promise<void> {
    this.mainPhase = false;
    this.net.heal();
    this.net.link = RELIABLE;
    for (const n of this.nodes) {
      this.setClockRate(n, 1);
      n.disarmCrash();
      this.clearFault(n);
      if (!n.up) await this.restart(n);
      else if (n.paused) this.resume(n);
    }
    this.note('QUIESCE');
    await this.settle();
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  note(s: string): void {
    const line = `${this.time.toFixed(3)} #${this.step} ${s}`;
    this.hash.update(line + '\n');
    this.keep(line);
  }

  /** A line of the kept trace (`traceKeep`) only: not hashed, so keeping a trace changes no hash. */
  private keep(line: string): void {
    if (this.cfg.traceKeep > 0) {
      this.trace.push(line);
      if (this.trace.length > this.cfg.traceKeep * 2) this.trace.splice(0, this.trace.length - this.cfg.traceKeep);
    }
  }

  /** Handle one event; returns a promise when it must be awaited (a scripted action). */
  private dispatch(ev: Ev): void | Promise<void> {
    switch (ev.k) {
      case 'tick': {
        const n = ev.node;
        if (!n.up || n.incarnation !== ev.inc || ev.timer.cancelled) return;
        this.queue.push(this.time + ev.timer.ms * this.clockRate(n), ev);
        if (n.paused) return; // a stopped process: the interval fires once it resumes
        ev.timer.fn();
        return;
      }
      case 'msg': {
        const n = ev.to;
        if (!n.up) return;
        if (!this.net.connected(ev.from, n.id)) {
          this.net.stats.partitionDrops++;
          return;
        }
        this.hash.update(ev.line);
        if (this.cfg.traceKeep > 0) this.keep(`${this.time.toFixed(3)} #${this.step} ${ev.from}>${n.id} ${ev.line.length > 200 ? ev.line.slice(0, 200) + '...' : ev.line}`);
        n.deliver(ev.line);
        return;
      }
      case 'req': {
        const n = ev.node;
        if (!n.up) return; // lost with the process; the client times out
        this.note(`c${ev.client}>${n.id} ${ev.line}`);
        n.deliver(ev.line);
        return;
      }
      case 'resp':
        this.note(`${ev.node}>c${ev.client} ${ev.line}`);
        for (const t of this.replyTaps) t(ev.node, `c${ev.client}`, ev.body);
        this.clients.response(ev.node, ev.client, ev.body);
        return;
      case 'timeout':
        this.clients.timeout(ev.client, ev.reqId);
        return;
      case 'client':
        this.clients.next(ev.client);
        return;
      case 'fn':
        return ev.fn();
    }
  }

  /** After each step: the servers' work done, the logs' lengths sampled, the invariants checked. */
  private async afterStep(): Promise<void> {
    if (this.anyBusy() || this.anyParked()) await this.settle();
    else this.checkErrors();
    this.invariants.afterStep();
  }

  async run(script?: (sim: Simulation) => void): Promise<SimResult> {
    let failure: Failure | null = null;
    const fail = (invariant: string, message: string): void => {
      failure = { invariant, message, step: this.step, time: this.time };
      this.note(`FAILURE ${invariant}: ${message}`);
    };
    try {
      for (const n of this.nodes) await this.restart(n);
      this.clients.start();
      this.nemesis.schedule();
      if (script) script(this);
      const mainEnd = this.cfg.durationMs;
      const endAt = mainEnd + this.cfg.quietMs;
      let quiesced = false;
      for (;;) {
        const t = this.queue.peekTime();
        if (t === undefined) break;
        if (!quiesced && (t >= mainEnd || (this.cfg.maxSteps !== undefined && this.step >= this.cfg.maxSteps))) {
          this.time = Math.max(this.time, Math.min(t, mainEnd));
          await this.quiesce();
          quiesced = true;
          await this.afterStep();
          continue;
        }
        if (t > endAt) break;
        const item = this.queue.pop()!;
        this.time = item.time;
        this.step++;
        const r = this.dispatch(item.ev);
        if (r) await r;
        await this.afterStep();
      }
      if (!quiesced) await this.quiesce();
      this.invariants.finalCheck();
      this.checkConverged();
      for (const c of this.endChecks) c();
    } catch (e) {
      if (e instanceof InvariantViolation) fail(e.invariant, e.message);
      else if (e === END) {
        /* stopped */
      } else fail('exception', (e as Error).stack ?? String(e));
    }
    let lin = 'skipped';
    // A missed scenario goal (liveness) does not hide a safety violation: the history so far (a
    // prefix; what was cut off is indeterminate) is checked all the same, and wins if it fails.
    const before = failure as Failure | null;
    if ((before === null || before.invariant === 'scenario') && this.cfg.checkLinearizability) {
      const res = checkHistory(this.history, { timeBudgetMs: this.cfg.checkBudgetMs, explain: true });
      lin = res.verdict;
      if (res.verdict === 'not-linearizable') {
        const v = res.violations[0];
        const also = before ? ` (the run had also missed a scenario goal: ${before.message})` : '';
        fail('linearizability', (v ? `key ${canonicalJson(v.key)}: ${v.message}` : 'history is not linearizable') + also);
      } else if (res.verdict === 'unknown' && before === null) {
        // No verdict is not a pass: the run fails (and `npm run sim` counts it as unknown).
        const keys = res.keys.filter((k) => k.verdict === 'unknown').map((k) => canonicalJson(k.key));
        fail(
          LIN_UNKNOWN,
          `the linearizability check did not finish within its ${this.cfg.checkBudgetMs} ms budget (${res.ops} operations; key${keys.length > 1 ? 's' : ''} ${keys.join(', ')} undecided)`,
        );
      }
    }
    return this.result(failure, lin);
  }

  /** After the quiet phase every node is up and has applied the same state. */
  private checkConverged(): void {
    const sts = this.nodes.map((n) => ({ n, st: n.status()! }));
    const maxCommit = Math.max(...sts.map((x) => x.st.commit));
    const digest = (n: SimNode): string => {
      const items: string[] = [];
      for (const [k, v] of n.kv.entries()) items.push(canonicalJson(k) + '=' + canonicalJson(v));
      return items.sort().join(';');
    };
    const d0 = digest(sts[0]!.n);
    for (const { n, st } of sts) {
      if (st.commit !== maxCommit || n.applied !== maxCommit) {
        throw new InvariantViolation(
          'convergence',
          `after ${this.cfg.quietMs} ms without faults, ${n.id} has commit ${st.commit} / applied ${n.applied}, the cluster's commit is ${maxCommit} (${sts.map((x) => `${x.n.id}:${x.st.role}/t${x.st.term}/c${x.st.commit}`).join(' ')})`,
        );
      }
      if (digest(n) !== d0) throw new InvariantViolation('convergence', `${n.id}'s state differs from ${sts[0]!.n.id}'s at applied index ${n.applied}`);
    }
  }

  private result(failure: Failure | null, lin: string): SimResult {
    const types = { ok: 0, fail: 0, info: 0, invoke: 0 };
    for (const h of this.history) types[h.type]++;
    this.hash.update(JSON.stringify(this.history));
    let elections = 0;
    let snapshotsTaken = 0;
    let snapshotsInstalled = 0;
    let followerReads = 0;
    let maxLog = 0;
    let restarts = 0;
    let torn = 0;
    const crashSteps: Record<string, number> = {};
    for (const n of this.nodes) {
      for (const [k, v] of n.crashSteps) crashSteps[k] = (crashSteps[k] ?? 0) + v;
      snapshotsTaken += n.stats.snapshotsTaken;
      snapshotsInstalled += n.stats.snapshotsInstalled;
      followerReads += n.stats.followerReads;
      maxLog = Math.max(maxLog, n.stats.maxLogLength);
      restarts += n.stats.restarts;
      torn += n.tornTails;
      elections += n.stats.elections;
    }
    return {
      seed: this.cfg.seed,
      scenario: this.cfg.scenario,
      ok: failure === null,
      failure,
      steps: this.step,
      simTimeMs: this.time,
      traceHash: this.hash.digest('hex').slice(0, 16),
      trace: this.trace.slice(-this.cfg.traceKeep),
      stats: {
        ops: types.invoke,
        okOps: types.ok,
        failOps: types.fail,
        infoOps: types.info + (types.invoke - types.ok - types.fail - types.info),
        elections,
        leaders: this.invariants.leaders.size,
        crashes: this.counters.crashes,
        restarts,
        crashPointsFired: this.counters.crashPointsFired,
        crashSteps,
        diskFaultStops: this.counters.diskFaultStops,
        diskFaults: this.counters.diskFaults,
        clockSkews: this.counters.clockSkews,
        tornTails: torn,
        snapshotsTaken,
        snapshotsInstalled,
        followerReads,
        maxLogLength: maxLog,
        partitions: this.net.stats.partitions,
        messages: this.net.stats.sent,
        dropped: this.net.stats.dropped + this.net.stats.partitionDrops,
        linearizability: lin,
        maxCommitted: this.invariants.maxCommitted,
      },
    };
  }
}

/** 3 -> "3", 1/3 -> "3" (for the trace). */
function fmtRate(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}
