/**
 * The deterministic simulator: N SimNodes (real RaftCore + KvStore over a SimDisk), a SimNetwork,
 * lin-kv clients recording a history, and a nemesis, all driven by one event queue on a simulated
 * clock and one seeded Random. Invariants are checked after every step; at the end the network
 * heals, every node comes back, the cluster must converge, and the history must be linearizable.
 */
import { createHash } from 'node:crypto';
import { checkHistory, type HistoryEvent } from '../check/index.js';
import type { KvCommand } from '../kv/index.js';
import { canonicalJson } from '../kv/keys.js';
import type { Json, NodeId, RaftMessage } from '../raft/types.js';
import { DEFAULT_DISK_OPTIONS, type DiskOptions, RecoveryError, SimDisk, StorageGap } from './disk.js';
import { InvariantViolation, Invariants } from './invariants.js';
import { CRASH_POINTS, type ClientOutcome, type ClientRequest, CrashNow, type CrashPoint, type NodeConfig, type NodeHost, SimNode } from './node.js';
import { type LinkConfig, LOSSY, RELIABLE, SimNetwork } from './network.js';
import { EventQueue } from './queue.js';
import { Random } from './random.js';

export type Broken = 'ack-before-persist';

export interface NemesisConfig {
  partitions: boolean;
  crashes: boolean;
  crashAll: boolean;
  pauses: boolean;
  /** Crash inside a Ready (before persist, mid-sync, ...) as well as between steps. */
  crashPoints: boolean;
  /** Switch the links between reliable and lossy now and then. */
  flakyLinks: boolean;
  /** Time between nemesis actions, ms. */
  interval: [number, number];
}

export const NO_NEMESIS: NemesisConfig = {
  partitions: false, crashes: false, crashAll: false, pauses: false, crashPoints: false, flakyLinks: false, interval: [200, 600],
};

export interface SimConfig {
  seed: number;
  scenario: string;
  nodes: number;
  clients: number;
  keys: number;
  /** Simulated time of the main phase (ms). */
  durationMs: number;
  /** Simulated time after the main phase: faults healed, no new client operations. */
  quietMs: number;
  /** Stop the main phase after this many steps (events), if given. */
  maxSteps?: number;
  tickMs: number;
  clientTimeoutMs: number;
  /** Client think time between operations, ms. */
  thinkMs: [number, number];
  node: NodeConfig;
  link: LinkConfig;
  disk: DiskOptions;
  nemesis: NemesisConfig;
  broken?: Broken;
  /** Keep the last `traceKeep` trace lines (0: none). */
  traceKeep: number;
  /** Check linearizability at the end (default true). */
  checkLinearizability: boolean;
  /** Time budget of the linearizability check, ms. */
  checkBudgetMs: number;
}

export interface Failure {
  invariant: string;
  message: string;
  step: number;
  time: number;
}

export interface SimResult {
  seed: number;
  scenario: string;
  ok: boolean;
  failure: Failure | null;
  steps: number;
  simTimeMs: number;
  traceHash: string;
  trace: string[];
  stats: {
    ops: number;
    okOps: number;
    failOps: number;
    infoOps: number;
    elections: number;
    leaders: number;
    crashes: number;
    restarts: number;
    crashPointsFired: number;
    tornCrashes: number;
    snapshotsTaken: number;
    snapshotsInstalled: number;
    maxLogLength: number;
    partitions: number;
    messages: number;
    dropped: number;
    linearizability: string;
    maxCommitted: number;
  };
}

type Ev =
  | { k: 'tick'; node: SimNode; inc: number }
  | { k: 'msg'; to: SimNode; from: NodeId; json: string; type: string }
  | { k: 'req'; node: SimNode; req: ClientRequest }
  | { k: 'resp'; node: NodeId; req: ClientRequest; o: ClientOutcome }
  | { k: 'timeout'; client: number; reqId: number }
  | { k: 'client'; client: number }
  | { k: 'fn'; label: string; fn: () => void };

interface Client {
  id: number;
  process: number;
  outstanding: { reqId: number; f: 'read' | 'write' | 'cas'; key: number; value: Json } | null;
  target: number;
}

const END = Symbol('end');

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
  readonly counters = { crashes: 0, crashPointsFired: 0 };
  private readonly hash = createHash('sha256');
  private readonly clients: Client[] = [];
  private nextProcess = 0;
  private nextReq = 0;
  private readonly nemesisRng: Random;
  private readonly clientRng: Random;
  private readonly faultRng: Random;
  /** Scenario hooks called at the end (may throw InvariantViolation). */
  readonly endChecks: Array<() => void> = [];

  constructor(readonly cfg: SimConfig) {
    const root = new Random(cfg.seed);
    this.rng = root.fork();
    const netRng = root.fork();
    this.nemesisRng = root.fork();
    this.clientRng = root.fork();
    this.faultRng = root.fork();
    const ids = Array.from({ length: cfg.nodes }, (_, i) => `n${i + 1}`);
    this.net = new SimNetwork(ids, netRng, cfg.link);
    this.invariants = new Invariants(() => this.nodes);
    for (const id of ids) {
      const broken = cfg.broken === 'ack-before-persist' && id === 'n1';
      const disk = new SimDisk({ ...cfg.disk, ackBeforePersist: broken }, () => Math.floor(this.time), id);
      this.nodes.push(new SimNode(id, ids, disk, cfg.node, this));
    }
  }

  get observer(): Invariants {
    return this.invariants;
  }

  now(): number {
    return this.time;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  at(delay: number, label: string, fn: () => void): void {
    this.queue.push(this.time + Math.max(0, delay), { k: 'fn', label, fn });
  }

  // -------------------------------------------------------------------------------------------
  // NodeHost

  send(m: RaftMessage): void {
    const to = this.nodes.find((n) => n.id === m.to);
    if (!to) return;
    const json = JSON.stringify(m);
    for (const d of this.net.fate()) this.queue.push(this.time + d, { k: 'msg', to, from: m.from, json, type: m.type });
  }

  reply(node: NodeId, req: ClientRequest, o: ClientOutcome): void {
    this.queue.push(this.time + this.net.clientFate(), { k: 'resp', node, req, o });
  }

  later(node: SimNode, delay: number, fn: () => void): void {
    this.at(delay, `${node.id} background`, () => {
      if (node.paused) node.held.push(fn);
      else this.guard(node, fn);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Node lifecycle

  /** Run `fn` on a live node, turning an armed crash point into a crash. */
  guard(node: SimNode, fn: () => void): void {
    if (!node.up) return;
    try {
      fn();
    } catch (e) {
      if (!(e instanceof CrashNow)) throw e;
      this.counters.crashPointsFired++;
      this.crash(node, e.point === 'mid-sync', e.point === 'before-persist' || e.point === 'mid-sync', `crash point ${e.point}`);
      this.scheduleRestart(node, this.faultRng.range(20, 300));
    }
  }

  crash(node: SimNode, tear: boolean, unpersisted = false, why = 'crash'): void {
    if (!node.up) return;
    this.invariants.beforeCrash(node, { unpersisted });
    node.crash(tear);
    this.counters.crashes++;
    this.note(`${node.id} CRASH (${why}${tear ? ', torn write' : ''})`);
  }

  scheduleRestart(node: SimNode, delay: number): void {
    const inc = node.incarnation;
    this.at(delay, `restart ${node.id}`, () => {
      if (node.up || node.incarnation !== inc) return;
      this.restart(node);
    });
  }

  restart(node: SimNode): void {
    if (node.up) return;
    try {
      node.start();
    } catch (e) {
      if (e instanceof CrashNow) {
        this.counters.crashPointsFired++;
        this.crash(node, false, true, `crash point ${e.point}`);
        this.scheduleRestart(node, 50);
        return;
      }
      if (e instanceof RecoveryError) throw new InvariantViolation('recovery', `${node.id}: ${e.message}`);
      throw e;
    }
    this.note(`${node.id} START (incarnation ${node.incarnation})`);
    this.scheduleTick(node, this.rng.next() * this.cfg.tickMs);
  }

  private scheduleTick(node: SimNode, delay: number): void {
    this.queue.push(this.time + delay, { k: 'tick', node, inc: node.incarnation });
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
    for (const f of held) this.guard(node, f);
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

  // -------------------------------------------------------------------------------------------
  // Clients

  private startClients(): void {
    for (let i = 0; i < this.cfg.clients; i++) {
      this.clients.push({ id: i, process: this.nextProcess++, outstanding: null, target: this.clientRng.int(this.cfg.nodes) });
      this.queue.push(this.time + this.clientRng.next() * 20, { k: 'client', client: i });
    }
  }

  private clientNext(c: Client): void {
    if (!this.mainPhase || c.outstanding) return;
    const r = this.clientRng;
    const key = r.int(this.cfg.keys);
    const roll = r.next();
    let cmd: KvCommand;
    let f: 'read' | 'write' | 'cas';
    let value: Json;
    if (roll < 0.4) {
      f = 'read';
      cmd = { op: 'read', key };
      value = null;
    } else if (roll < 0.7) {
      f = 'write';
      value = r.int(5);
      cmd = { op: 'write', key, value };
    } else {
      f = 'cas';
      const from = r.int(5);
      const to = r.int(5);
      value = [from, to];
      cmd = { op: 'cas', key, from, to };
    }
    const reqId = this.nextReq++;
    c.outstanding = { reqId, f, key, value };
    this.history.push({ type: 'invoke', process: c.process, f, key, value, time: this.time });
    const node = this.nodes[c.target]!;
    this.queue.push(this.time + this.net.clientFate(), { k: 'req', node, req: { client: c.id, reqId, cmd } });
    this.queue.push(this.time + this.cfg.clientTimeoutMs, { k: 'timeout', client: c.id, reqId });
  }

  private clientResponse(nodeId: NodeId, req: ClientRequest, o: ClientOutcome): void {
    const c = this.clients[req.client]!;
    const out = c.outstanding;
    if (!out || out.reqId !== req.reqId) return; // timed out already
    c.outstanding = null;
    const base = { process: c.process, f: out.f, key: out.key, time: this.time, node: nodeId };
    if (o.kind === 'result') {
      const r = o.result;
      if (r.ok) {
        this.history.push({ ...base, type: 'ok', value: out.f === 'read' ? (r.value ?? null) : out.value });
        c.target = this.nodes.findIndex((n) => n.id === nodeId);
      } else {
        this.history.push({ ...base, type: 'fail', value: out.value, code: r.code, error: r.text });
      }
    } else if (o.code === 11) {
      this.history.push({ ...base, type: 'fail', value: out.value, code: 11, error: o.text });
      const hint = /try (n\d+)/.exec(o.text);
      c.target = hint ? this.nodes.findIndex((n) => n.id === hint[1]) : this.clientRng.int(this.cfg.nodes);
    } else {
      this.history.push({ ...base, type: 'info', value: out.value, code: o.code, error: o.text });
      c.process = this.nextProcess++;
      c.target = this.clientRng.int(this.cfg.nodes);
    }
    this.queue.push(this.time + this.clientRng.range(this.cfg.thinkMs[0], this.cfg.thinkMs[1]), { k: 'client', client: c.id });
  }

  private clientTimeout(clientId: number, reqId: number): void {
    const c = this.clients[clientId]!;
    const out = c.outstanding;
    if (!out || out.reqId !== reqId) return;
    c.outstanding = null;
    this.history.push({ type: 'info', process: c.process, f: out.f, key: out.key, value: out.value, time: this.time, code: 0, error: 'timeout' });
    c.process = this.nextProcess++;
    c.target = this.clientRng.int(this.cfg.nodes);
    this.queue.push(this.time + this.clientRng.range(this.cfg.thinkMs[0], this.cfg.thinkMs[1]), { k: 'client', client: c.id });
  }

  // -------------------------------------------------------------------------------------------
  // Nemesis

  private scheduleNemesis(): void {
    const n = this.cfg.nemesis;
    if (!(n.partitions || n.crashes || n.crashAll || n.pauses || n.flakyLinks)) return;
    const [lo, hi] = n.interval;
    this.at(lo + this.nemesisRng.next() * (hi - lo), 'nemesis', () => {
      if (!this.mainPhase) return;
      this.nemesisAction();
      this.scheduleNemesis();
    });
  }

  private nemesisAction(): void {
    const n = this.cfg.nemesis;
    const r = this.nemesisRng;
    const acts: string[] = [];
    if (n.partitions) acts.push('partition', 'partition', 'heal');
    if (n.crashes) acts.push('crash', 'crash');
    if (n.crashAll) acts.push('crash-all');
    if (n.pauses) acts.push('pause');
    if (n.flakyLinks) acts.push('links');
    const act = r.pick(acts);
    const live = this.nodes.filter((x) => x.up);
    switch (act) {
      case 'partition':
        this.net.randomPartition();
        this.note(`PARTITION ${this.net.description}`);
        break;
      case 'heal':
        this.net.heal();
        this.note('HEAL');
        break;
      case 'crash': {
        if (live.length === 0) break;
        // Prefer the leader now and then: that is where the interesting crashes are.
        const ldr = this.leader();
        const node = ldr && r.chance(0.5) ? ldr : r.pick(live);
        if (n.crashPoints && r.chance(0.6)) {
          const p: CrashPoint = r.pick(CRASH_POINTS);
          node.crashPoint = p;
          this.note(`${node.id} ARM crash point ${p}`);
        } else {
          this.crash(node, r.chance(0.5));
          this.scheduleRestart(node, r.range(20, 400));
        }
        break;
      }
      case 'crash-all': {
        for (const x of live) this.crash(x, r.chance(0.5));
        for (const x of this.nodes) this.scheduleRestart(x, r.range(10, 300));
        break;
      }
      case 'pause': {
        const cand = live.filter((x) => !x.paused);
        if (cand.length === 0) break;
        const node = r.pick(cand);
        this.pause(node);
        this.at(r.range(50, 600), `resume ${node.id}`, () => this.resume(node));
        break;
      }
      case 'links':
        this.net.link = this.net.link === RELIABLE ? LOSSY : RELIABLE;
        this.note(`LINKS ${this.net.link === RELIABLE ? 'reliable' : 'lossy'}`);
        break;
    }
  }

  /** End of the main phase: heal, bring every node back, stop new operations. */
  quiesce(): void {
    this.mainPhase = false;
    this.net.heal();
    this.net.link = RELIABLE;
    for (const n of this.nodes) {
      n.crashPoint = null;
      if (!n.up) this.restart(n);
      else if (n.paused) this.resume(n);
    }
    this.note('QUIESCE');
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  note(s: string): void {
    const line = `${this.time.toFixed(3)} #${this.step} ${s}`;
    this.hash.update(line + '\n');
    if (this.cfg.traceKeep > 0) {
      this.trace.push(line);
      if (this.trace.length > this.cfg.traceKeep * 2) this.trace.splice(0, this.trace.length - this.cfg.traceKeep);
    }
  }

  private dispatch(ev: Ev): void {
    switch (ev.k) {
      case 'tick': {
        const n = ev.node;
        if (!n.up || n.incarnation !== ev.inc) return;
        this.scheduleTick(n, this.cfg.tickMs);
        if (n.paused) return;
        this.guard(n, () => n.tick());
        return;
      }
      case 'msg': {
        const n = ev.to;
        if (!n.up) return;
        if (!this.net.connected(ev.from, n.id)) {
          this.net.stats.partitionDrops++;
          return;
        }
        if (this.cfg.traceKeep > 0) this.note(`${ev.from}>${n.id} ${ev.json.length > 200 ? ev.json.slice(0, 200) + '...' : ev.json}`);
        else this.hash.update(ev.json);
        const deliver = (): void => n.step(JSON.parse(ev.json) as RaftMessage);
        if (n.paused) n.held.push(deliver);
        else this.guard(n, deliver);
        return;
      }
      case 'req': {
        const n = ev.node;
        if (!n.up) return; // lost with the process; the client times out
        this.note(`c${ev.req.client}>${n.id} ${JSON.stringify(ev.req.cmd)}`);
        const f = (): void => n.request(ev.req);
        if (n.paused) n.held.push(f);
        else this.guard(n, f);
        return;
      }
      case 'resp':
        this.note(`${ev.node}>c${ev.req.client} ${JSON.stringify(ev.o)}`);
        this.clientResponse(ev.node, ev.req, ev.o);
        return;
      case 'timeout':
        this.clientTimeout(ev.client, ev.reqId);
        return;
      case 'client':
        this.clientNext(this.clients[ev.client]!);
        return;
      case 'fn':
        ev.fn();
        return;
    }
  }

  run(script?: (sim: Simulation) => void): SimResult {
    let failure: Failure | null = null;
    const fail = (invariant: string, message: string): void => {
      failure = { invariant, message, step: this.step, time: this.time };
      this.note(`FAILURE ${invariant}: ${message}`);
    };
    try {
      for (const n of this.nodes) this.restart(n);
      this.startClients();
      this.scheduleNemesis();
      if (script) script(this);
      const mainEnd = this.cfg.durationMs;
      const endAt = mainEnd + this.cfg.quietMs;
      let quiesced = false;
      for (;;) {
        const t = this.queue.peekTime();
        if (t === undefined) break;
        if (!quiesced && (t >= mainEnd || (this.cfg.maxSteps !== undefined && this.step >= this.cfg.maxSteps))) {
          this.time = Math.max(this.time, Math.min(t, mainEnd));
          this.quiesce();
          quiesced = true;
          this.invariants.afterStep();
          continue;
        }
        if (t > endAt) break;
        const item = this.queue.pop()!;
        this.time = item.time;
        this.step++;
        this.dispatch(item.ev);
        this.invariants.afterStep();
      }
      if (!quiesced) this.quiesce();
      this.invariants.finalCheck();
      this.checkConverged();
      for (const c of this.endChecks) c();
    } catch (e) {
      if (e instanceof InvariantViolation) fail(e.invariant, e.message);
      else if (e instanceof StorageGap) fail('storage-gap', e.message);
      else if (e === END) {
        /* stopped */
      } else fail('exception', (e as Error).stack ?? String(e));
    }
    let lin = 'skipped';
    if (!failure && this.cfg.checkLinearizability) {
      const res = checkHistory(this.history, { timeBudgetMs: this.cfg.checkBudgetMs, explain: true });
      lin = res.verdict;
      if (res.verdict === 'not-linearizable') {
        const v = res.violations[0];
        fail('linearizability', v ? `key ${canonicalJson(v.key)}: ${v.message}` : 'history is not linearizable');
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
    let maxLog = 0;
    let restarts = 0;
    let torn = 0;
    for (const n of this.nodes) {
      snapshotsTaken += n.stats.snapshotsTaken;
      snapshotsInstalled += n.stats.snapshotsInstalled;
      maxLog = Math.max(maxLog, n.stats.maxLogLength);
      restarts += n.stats.restarts;
      torn += n.disk.stats.tornCrashes;
      elections += n.stats.elections + (n.core ? n.core.stats().electionsStarted : 0);
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
        tornCrashes: torn,
        snapshotsTaken,
        snapshotsInstalled,
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

export function defaultConfig(seed: number, scenario = 'random'): SimConfig {
  return {
    seed,
    scenario,
    nodes: 3,
    clients: 3,
    keys: 3,
    durationMs: 3000,
    quietMs: 2000,
    tickMs: 10,
    clientTimeoutMs: 600,
    thinkMs: [0, 20],
    node: {
      electionTicks: 15,
      heartbeatTicks: 3,
      preVote: true,
      checkQuorum: true,
      maxEntriesPerAppend: 16,
      maxInflight: 4,
      snapshotChunkSize: 256,
      snapshotThreshold: 10,
      trailingLogs: 2,
      snapshotDelay: [0, 0],
    },
    link: RELIABLE,
    disk: { ...DEFAULT_DISK_OPTIONS },
    nemesis: { ...NO_NEMESIS },
    traceKeep: 0,
    checkLinearizability: true,
    checkBudgetMs: 5000,
  };
}
