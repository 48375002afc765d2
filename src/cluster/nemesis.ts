/**
 * Faults: partitions of Jepsen's shapes (Maelstrom's partition nemesis), SIGKILL + restart on the same data directory with a new
 * `init`, and SIGSTOP / SIGCONT. Faults alternate with healthy periods of the same length; kinds
 * are taken in turn, the first being a partition that isolates one node — a follower when the
 * runner knows the roles — long enough, with the runner's defaults, for the leader to compact past
 * what the isolated node has, so that it must catch up by InstallSnapshot.
 */
import type { Random } from './random.js';

export type NemesisKind = 'partition' | 'kill' | 'pause';
export const NEMESIS_KINDS: readonly NemesisKind[] = ['partition', 'kill', 'pause'];

/** Jepsen's partition specs (jepsen.nemesis.combined), which Maelstrom's partition nemesis draws from. */
export type PartitionShape = 'one' | 'minority-third' | 'majority' | 'majorities-ring';
export const PARTITION_SHAPES: readonly PartitionShape[] = ['one', 'minority-third', 'majority', 'majorities-ring'];

/** grudges.get(dest) = the set of nodes whose messages dest drops. */
export type Grudges = Map<string, Set<string>>;

/** Every node of `a` and every node of `b` stop hearing each other. */
function cut(a: readonly string[], b: readonly string[], g: Grudges = new Map()): Grudges {
  const add = (dest: string, src: string): void => {
    let s = g.get(dest);
    if (!s) g.set(dest, (s = new Set()));
    s.add(src);
  };
  for (const x of a) for (const y of b) {
    add(x, y);
    add(y, x);
  }
  return g;
}

/** The largest number of nodes strictly below a third of `n` (Jepsen's `minority-third`). */
export function minorityThird(n: number): number {
  return Math.floor((n - 1) / 3);
}

/**
 * The grudges of one partition, as Jepsen computes them:
 * - `one`: a single node cut off from the others (`isolate`, when given, else a random one);
 * - `minority-third`: fewer than a third of the nodes cut off (none of 3 nodes: a fault that
 *   drops nothing, as in Jepsen);
 * - `majority`: a clean split, the smaller half (floor(n/2) nodes) against the rest;
 * - `majorities-ring`: the nodes on a shuffled ring, each hearing only the majority of
 *   consecutive nodes it stands in the middle of; every node hears a majority, no two the same
 *   one, and links can be one-way.
 */
export function partitionGrudges(
  shape: PartitionShape,
  nodes: readonly string[],
  rnd: Random,
  isolate?: string,
): { grudges: Grudges; detail: string } {
  const shuffled = rnd.shuffle(nodes);
  const n = nodes.length;
  const split = (k: number): { grudges: Grudges; detail: string } => {
    const side = shuffled.slice(0, k);
    const rest = shuffled.slice(k);
    if (side.length === 0) return { grudges: new Map(), detail: `no node cut off (${shape} of ${n} nodes is none)` };
    return { grudges: cut(side, rest), detail: `${side.join(',')} | ${rest.join(',')}` };
  };
  if (shape === 'one') {
    if (isolate !== undefined && nodes.includes(isolate)) {
      shuffled.splice(shuffled.indexOf(isolate), 1);
      shuffled.unshift(isolate);
    }
    const [x, ...rest] = shuffled;
    return { grudges: cut([x!], rest), detail: `isolated ${x} from ${rest.join(',')}` };
  }
  if (shape === 'minority-third') return split(minorityThird(n));
  if (shape === 'majority') return split(Math.floor(n / 2));
  const m = Math.floor(n / 2) + 1;
  const g: Grudges = new Map();
  const views: string[] = [];
  for (let i = 0; i < n; i++) {
    const window = Array.from({ length: m }, (_, k) => shuffled[(i + k) % n]!);
    const dest = window[Math.floor(m / 2)]!;
    const view = new Set(window);
    const drop = new Set(nodes.filter((x) => !view.has(x)));
    if (drop.size > 0) g.set(dest, drop);
    views.push(`${dest} hears ${window.join(',')}`);
  }
  return { grudges: g, detail: views.join('; ') };
}

export interface NemesisTarget {
  readonly nodeIds: readonly string[];
  /** Nodes that last said they were followers (optional hint for the first partition). */
  followers?(): string[];
  partition(g: Grudges): void;
  healNetwork(): void;
  kill(ids: string[]): void;
  /** Restarts on the same data directory and sends `init` again. */
  restart(ids: string[]): Promise<void>;
  pause(ids: string[]): void;
  resume(ids: string[]): void;
}

export interface NemesisEvent {
  /** Milliseconds since the run started. */
  time: number;
  kind: NemesisKind | 'heal';
  detail: string;
}

export class Nemesis {
  readonly events: NemesisEvent[] = [];
  private turn = 0;
  private killed: string[] = [];
  private paused: string[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  /** Description of the fault in force, for the progress line. */
  current = 'healthy';

  constructor(
    private readonly kinds: readonly NemesisKind[],
    private readonly intervalMs: number,
    private readonly rnd: Random,
    private readonly target: NemesisTarget,
    private readonly clock: () => number,
  ) {}

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  /** Runs faults until `untilMs` (run clock), then heals everything. */
  async run(untilMs: number): Promise<void> {
    if (this.kinds.length === 0) return;
    while (!this.stopped) {
      await this.sleep(this.intervalMs);
      if (this.stopped || this.clock() + this.intervalMs > untilMs) break;
      await this.startFault();
      await this.sleep(this.intervalMs);
      await this.heal();
    }
    await this.heal();
  }

  /** Ends the fault loop early (its `run` then heals and returns). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private log(kind: NemesisEvent['kind'], detail: string): void {
    this.events.push({ time: Math.round(this.clock()), kind, detail });
  }

  private async startFault(): Promise<void> {
    const kind = this.kinds[this.turn % this.kinds.length]!;
    const first = this.turn === 0;
    this.turn++;
    const ids = this.target.nodeIds;
    if (kind === 'partition') {
      const shape: PartitionShape = first ? 'one' : this.rnd.pick(PARTITION_SHAPES);
      // The first one cuts off a follower: the leader goes on committing and compacting, so the
      // follower falls behind the leader's snapshot and must catch up by InstallSnapshot.
      const followers = first ? (this.target.followers?.() ?? []).filter((f) => ids.includes(f)) : [];
      const victim = followers.length > 0 ? this.rnd.pick(followers) : undefined;
      const { grudges, detail } = partitionGrudges(shape, ids, this.rnd, victim);
      this.target.partition(grudges);
      this.current = `partition: ${detail}`;
      this.log('partition', `${shape}: ${detail}`);
    } else if (kind === 'kill') {
      // Sometimes every node at once: recovery of the whole cluster from its data directories.
      const victims = this.rnd.next() < 0.3 ? ids.slice() : this.rnd.subset(ids);
      this.target.kill(victims);
      this.killed = victims;
      this.current = `killed ${victims.join(',')}`;
      this.log('kill', `SIGKILL ${victims.join(',')}`);
    } else {
      const victims = this.rnd.subset(ids);
      this.target.pause(victims);
      this.paused = victims;
      this.current = `paused ${victims.join(',')}`;
      this.log('pause', `SIGSTOP ${victims.join(',')}`);
    }
  }

  /** Heals every fault in force: network, paused nodes, killed nodes (restarted with `init`). */
  async heal(): Promise<void> {
    const did: string[] = [];
    if (this.paused.length > 0) {
      this.target.resume(this.paused);
      did.push(`SIGCONT ${this.paused.join(',')}`);
      this.paused = [];
    }
    if (this.current.startsWith('partition')) did.push('network healed');
    this.target.healNetwork();
    if (this.killed.length > 0) {
      const ids = this.killed;
      this.killed = [];
      await this.target.restart(ids);
      did.push(`restarted ${ids.join(',')}`);
    }
    if (did.length > 0) this.log('heal', did.join('; '));
    this.current = 'healthy';
  }
}
