/**
 * The simulator's configuration and results: what a scenario sets (nodes, clients, links, disks,
 * nemesis, a deliberately broken node) and what a run reports. `defaultConfig` is the base every
 * scenario starts from (scenarios.ts).
 */
import type { BrokenStorage } from './broken-fs.js';
import type { DiskConfig, NodeConfig } from './node.js';
import { type LinkConfig, RELIABLE } from './network.js';
import type { CrashOptions } from './sim-fs.js';

/**
 * The deliberately broken nodes (node n1 only): the driver acknowledges before persisting
 * (ServerEnv.unsafeAckBeforePersist), or the storage leaves out one fsync (broken-fs.ts).
 */
export type Broken = 'ack-before-persist' | BrokenStorage;
export const BROKEN: readonly Broken[] = ['ack-before-persist', 'no-wal-fsync', 'no-snapshot-dir-fsync'];

/** The failure of a run whose linearizability check ran out of its budget (no verdict). */
export const LIN_UNKNOWN = 'linearizability-unknown';

export interface NemesisConfig {
  partitions: boolean;
  crashes: boolean;
  crashAll: boolean;
  pauses: boolean;
  /** Crash at a file-system call (one of the node's next `crashPointCalls` mutating calls) as well as between steps. */
  crashPoints: boolean;
  /** The window a crash point is drawn from (default 40 calls). */
  crashPointCalls?: number;
  /** The share of the nemesis's crashes that are crash points (default 0.6; the rest crash between steps). */
  crashPointShare?: number;
  /**
   * Storage steps (node.ts storageStep) crash points are also aimed at: half of them then crash
   * at one of the first 3 calls of a step drawn from this list, whenever it comes.
   */
  crashPointSteps?: readonly string[];
  /** Disk faults (EIO, disk full, read-only) on a leader or a follower: it must stop; restarted later with the fault cleared. */
  diskFaults: boolean;
  /** Switch the links between reliable and lossy now and then. */
  flakyLinks: boolean;
  /** Run one node's clock 3x slower or 3x faster for a while (its ticks and sleeps). */
  clockSkew: boolean;
  /** Time between nemesis actions, ms. */
  interval: [number, number];
}

export const NO_NEMESIS: NemesisConfig = {
  partitions: false, crashes: false, crashAll: false, pauses: false, crashPoints: false, diskFaults: false, flakyLinks: false, clockSkew: false, interval: [200, 600],
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
  disk: DiskConfig;
  /** Probability that a restart arms a crash at one of its first file-system calls (recovery, lock, meta.json). */
  restartCrash: number;
  /** A node that stopped after a disk fault is restarted this many ms later ([min, max]). */
  faultRestartMs: [number, number];
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
    /** Crash points fired, by the storage step the call belonged to (node.ts storageStep). */
    crashSteps: Record<string, number>;
    /** Disk faults that stopped a node (fail-stop) / injected. */
    diskFaultStops: number;
    diskFaults: number;
    /** Clock-rate skew episodes started (nemesis or script). */
    clockSkews: number;
    /** Recoveries that cut a torn WAL tail. */
    tornTails: number;
    snapshotsTaken: number;
    snapshotsInstalled: number;
    /** Reads answered by a follower from its own state (with a read index from the leader). */
    followerReads: number;
    maxLogLength: number;
    partitions: number;
    messages: number;
    dropped: number;
    linearizability: string;
    maxCommitted: number;
  };
}

/**
 * How a torn crash garbles the last sector it keeps of a file: a quarter of the time, with zeros
 * or random bytes. WAL format 2's rule (docs/FORMAT.md, "Torn or corrupt") allows any bytes in the
 * last sector a crash keeps, so random garbage that happens to form a complete record with a bad
 * checksum is still a torn tail, not corruption (docs/SIMULATION.md, "Crashes and the torn-tail rule").
 */
export const DEFAULT_CRASH: CrashOptions = { garble: 0.25, garbage: 'mixed' };

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
      snapshotJitter: 0,
      trailingLogs: 2,
      snapshotDelay: [0, 0],
      requestTimeoutMs: 1000,
      leaderWaitMs: 150,
    },
    link: RELIABLE,
    // WAL format 2 pads every sync to a 512-byte sector: 8 KiB is about 14 syncs per segment, a
    // rotation every few snapshots (scenarios that stress rotation pick smaller segments).
    disk: { segmentBytes: 8192, retain: 2, crash: { ...DEFAULT_CRASH } },
    restartCrash: 0,
    faultRestartMs: [50, 400],
    nemesis: { ...NO_NEMESIS },
    traceKeep: 0,
    checkLinearizability: true,
    checkBudgetMs: 5000,
  };
}
