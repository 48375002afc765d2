/**
 * One simulated node: the real serve driver (`RaftServer`, src/node/server.ts, with its Ready loop in ready-loop.ts,
 * snapshotter, client requests and forwarding) over the real storage (`DiskStorage` behind the
 * node's `StorageNodeStore`, src/storage and src/node/storage-adapter.ts) on the node's own
 * simulated file system (`SimFs`), hosted in the simulator. What the simulator provides in place
 * of the process's surroundings:
 *  - an `Outbox` whose sink hands every Maelstrom line to the simulated network (`NodeHost.route`);
 *  - `Timers` whose ticks come from the event queue and whose clock is simulated time;
 *  - the disk: a SimFs that outlives the process (page cache, crashes, injected faults), on which
 *    each incarnation opens its data directory `/data/<id>` with a lock pid of its own;
 *  - a thin observing decorator around the store (`SimStore`, sim-store.ts) and a `ServerProbe`
 *    through which the invariant checker sees what was recovered, persisted, applied, snapshotted.
 * Everything else (server, core, state machine, pending requests) dies with the process.
 *
 * Crash points are file-system calls: `armCrash(k)` makes the k-th next mutating call of the
 * node's SimFs throw `SimCrash`. Before it is thrown the process is marked dead (`dying`): its sink
 * drops every line and its log is no longer read, so whatever the server's fail-stop path does with
 * the error is never seen; the simulator then crashes the disk (`crash`) once the dead server's
 * work has drained, and restarts the node later.
 *
 * The server's queue runs through async functions; the simulator runs them to completion after
 * every event (`Simulation.settle`, microtasks only: SimFs calls are synchronous), so a run depends
 * on the seed alone. `quiescent` says when nothing is left to run.
 */
import type { LoadClock } from '../node/install.js';
import type { Logger } from '../node/log.js';
import { defaultOptions, type ServeOptions } from '../node/options.js';
import { Outbox, type LineSink } from '../node/protocol.js';
import { RaftServer, type ServerProbe } from '../node/server.js';
import { StorageNodeStore } from '../node/storage-adapter.js';
import type { RecoveredState } from '../node/store.js';
import type { Timers } from '../node/timers.js';
import type { RaftCore } from '../raft/core.js';
import type { Entry, HardState, Json, NodeId, RaftConfig, SnapshotMeta } from '../raft/types.js';
import type { FileSystem } from '../storage/fs.js';
import { DiskStorage } from '../storage/node-storage.js';
import { listSegmentFiles } from '../storage/wal.js';
import { BrokenFs, type BrokenStorage } from './broken-fs.js';
import type { DiskFault } from './disk-faults.js';
import type { Random } from './random.js';
import { SimCrash, SimFs, type CallKind, type CrashHow, type CrashOptions } from './sim-fs.js';
import { AckedState, SimStore } from './sim-store.js';

/** The core's timing and flow-control settings, plus what the serve driver's flags set. */
export interface NodeConfig
  extends Pick<
    RaftConfig,
    'electionTicks' | 'heartbeatTicks' | 'preVote' | 'checkQuorum' | 'maxEntriesPerAppend' | 'maxInflight' | 'snapshotChunkSize'
  > {
  /** Snapshot after this many applied entries (1: after every entry); 0 disables snapshots. */
  snapshotThreshold: number;
  /** The serve driver's --snapshot-jitter (threshold × [1, 1 + jitter)). */
  snapshotJitter: number;
  /** Log entries kept before the snapshot index on compaction. */
  trailingLogs: number;
  /** Background snapshot duration in ms ([min, max]); [0, 0] saves at once. */
  snapshotDelay: [number, number];
  /** The driver's --request-timeout-ms and --leader-wait-ms. */
  requestTimeoutMs: number;
  leaderWaitMs: number;
}

/** The node's disk and storage settings. */
export interface DiskConfig {
  /** --segment-bytes: rotate to a new WAL segment once the newest one holds this many bytes. */
  segmentBytes: number;
  /** --retain: snapshot files kept. */
  retain: number;
  /** How a crash garbles the last sector it keeps of a file (SimFs crash options). */
  crash: CrashOptions;
}

/** Simulated latency of an fsync that runs off the event loop, ms ([min, max)). */
const FSYNC_MS: readonly [number, number] = [0.1, 4];

/** Where each node's data directory lives on its SimFs. */
export const DATA_ROOT = '/data';

/** What a node needs from the simulator. */
export interface NodeHost {
  readonly rng: Random;
  now(): number;
  /** A line the node wrote to its stdout. */
  route(node: SimNode, line: string): void;
  /** Call `fn` every `ms` ms while this incarnation lives (not while paused). */
  every(node: SimNode, ms: number, fn: () => void): () => void;
  /** Resolve after `ms` ms of simulated time if this incarnation still lives (held while paused). */
  sleep(node: SimNode, ms: number): Promise<void>;
  observer: NodeObserver;
}

/** Hooks for the invariant checker. */
export interface NodeObserver {
  onRecovered(node: SimNode, rec: RecoveredState): void;
  onPersisted(node: SimNode, rd: { entries: Entry[]; hardState: HardState | null; prevTerm?: number | undefined }): void;
  onApplied(node: SimNode, e: Entry): void;
  onSnapshotReceived(node: SimNode, meta: SnapshotMeta): void;
  onSnapshotRestored(node: SimNode, meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>): void;
  onSnapshotTaken(node: SimNode, meta: SnapshotMeta, pairs: Array<[Json, Json]>): void;
  /** A line the node wrote after its storage failed (it must stop: only 11 and 13 answers may follow). */
  onOutputAfterFailure(node: SimNode, line: string, failure: Error): void;
}

/**
 * Recovery warnings a crash (or a failed write) legitimately leaves: torn or unsealed WAL tails,
 * temporary files, partial receives, a stale lock. Anything else recovery reports (a broken
 * snapshot file, a snapshot whose header disagrees with its name) fails the run.
 */
const CRASH_LEFTOVERS = /torn tail|never completed|orphaned temporary file|partially received snapshot|stale lock/;

/** The serve options of a simulated node. */
export function serveOptions(cfg: NodeConfig, tickMs: number, disk: DiskConfig): ServeOptions {
  return {
    ...defaultOptions(),
    // A data root makes the driver treat its store as durable (recovery before init_ok); the
    // simulator's openStore opens `<root>/<id>` on the node's SimFs.
    dataDir: null,
    dataRoot: DATA_ROOT,
    fsync: true,
    snapshotThreshold: cfg.snapshotThreshold,
    snapshotThresholdBytes: 0,
    snapshotJitter: cfg.snapshotJitter,
    trailingLogs: cfg.trailingLogs,
    retain: disk.retain,
    chunkSize: cfg.snapshotChunkSize,
    segmentBytes: disk.segmentBytes,
    tickMs,
    heartbeatMs: cfg.heartbeatTicks * tickMs,
    electionTimeoutMs: cfg.electionTicks * tickMs,
    preVote: cfg.preVote,
    checkQuorum: cfg.checkQuorum,
    maxAppendEntries: cfg.maxEntriesPerAppend,
    maxInflight: cfg.maxInflight,
    requestTimeoutMs: cfg.requestTimeoutMs,
    leaderWaitMs: cfg.leaderWaitMs,
    logLevel: 'quiet',
  };
}

/**
 * The step of the storage's work a mutating file-system call of a node belongs to, told from its
 * kind and path (crash-point coverage and aim): `lock-meta` (directories, LOCK, meta.json),
 * `wal-append` (a segment's records and their fsync; also recovery sealing a tail), `wal-rotate`
 * (a new segment: temporary, rename), `segment-delete` (compaction), `snapshot-save`,
 * `snapshot-receive`, `snapshot-prune`, `recovery` (torn copies, cuts, broken snapshots set
 * aside), and the directory fsyncs `wal-dir-fsync` / `snapshot-dir-fsync` that end several steps.
 */
export function storageStep(kind: CallKind, p: string): string {
  if (/\/(LOCK|meta\.json)(\.tmp-\d+-\d+)?$/.test(p) || kind === 'mkdir' || p === DATA_ROOT || /^\/data\/[^/]+$/.test(p)) return 'lock-meta';
  if (p.includes('.torn-') || p.endsWith('.broken') || kind === 'ftruncate') return 'recovery';
  if (p.includes('/wal')) {
    if (kind === 'unlink') return p.includes('.tmp-') ? 'wal-rotate' : 'segment-delete';
    if (p.includes('.wal.tmp-')) return 'wal-rotate';
    if (p.endsWith('/wal')) return 'wal-dir-fsync';
    return 'wal-append';
  }
  if (p.includes('/snap')) {
    if (p.includes('.recv')) return 'snapshot-receive';
    if (p.includes('.snap.tmp-')) return 'snapshot-save';
    if (kind === 'unlink') return 'snapshot-prune';
    if (p.endsWith('/snap')) return 'snapshot-dir-fsync';
    return 'snapshot-other';
  }
  return 'other';
}

export class SimNode {
  server: RaftServer | null = null;
  store: SimStore | null = null;
  /** The real storage of the live incarnation (once opened). */
  storage: DiskStorage | null = null;
  incarnation = 0;
  up = false;
  paused = false;
  /** Lines and wake-ups that arrived while paused, delivered on resume. */
  readonly held: Array<() => void> = [];
  /** Warnings the server logged that no crash explains (each fails the run), and storage refusals. */
  readonly errors: Error[] = [];
  /** Why the process stopped itself (fail-stop, or storage it could not open), if it did. */
  fatal: Error | null = null;
  /** The FATAL lines it logged. */
  readonly fatalLines: string[] = [];
  /** The process died at an armed crash point (a file-system call); its disk is crashed after its work drained. */
  dying: SimCrash | null = null;
  /** A FATAL the scenario expects of this incarnation (matched against the error's message). */
  expectFatal: RegExp | null = null;
  /** The last answer to `init` (the simulator's own message). */
  initReply: { type: string; code?: number; text?: string } | null = null;
  /** The fault injected into this node's disk, until cleared. */
  fault: DiskFault | null = null;
  /** What the node has made durable (and so may have acknowledged): held against the next recovery. */
  readonly acked = new AckedState();
  /** Newest snapshot the storage holds (read from it after recovery, saves and received transfers). */
  storedSnapshotIndex = 0;
  snapshotsReceived = 0;
  /** Its fsyncs take this many times the simulated disk latency (a scenario's slow disk). */
  fsyncSlowdown = 1;
  /** Crash points that fired, by storage step (`storageStep`). */
  readonly crashSteps = new Map<string, number>();
  /** Recoveries that found a torn tail to cut. */
  tornTails = 0;

  /** The file system the storage sees (the SimFs, or a test-only broken wrapper of it). */
  private readonly storageFs: FileSystem;
  private crashAtCall = 0;
  /** An aimed crash point: the `left`-th next call of this storage step. */
  private crashAim: { step: string; left: number } | null = null;
  /** Figures of dead incarnations (the server's own stats die with it). */
  private readonly counts = { snapshotsTaken: 0, snapshotsInstalled: 0, restarts: 0, maxLogLength: 0, elections: 0, followerReads: 0 };
  readonly dir: string;

  constructor(
    readonly id: NodeId,
    readonly peers: readonly NodeId[],
    /** The node's disk: outlives its processes. */
    readonly fs: SimFs,
    readonly cfg: NodeConfig,
    readonly disk: DiskConfig,
    private readonly host: NodeHost,
    private readonly options: ServeOptions,
    private readonly broken: { storage?: BrokenStorage; ackBeforePersist?: boolean } = {},
  ) {
    this.dir = `${DATA_ROOT}/${id}`;
    this.storageFs = broken.storage ? new BrokenFs(fs, broken.storage) : fs;
    // The WAL's group-commit fsync runs off the event loop (FileSystem.fsyncAsync): it completes
    // as an event of its own, after a simulated disk latency, so that the driver steps inputs
    // meanwhile; if the process dies first it never completes.
    fs.deferFsync = (run) => {
      void host.sleep(this, this.fsyncSlowdown * (FSYNC_MS[0] + host.rng.next() * (FSYNC_MS[1] - FSYNC_MS[0]))).then(run);
    };
    fs.onCall = (n, kind, p) => {
      if (n !== this.crashAtCall) {
        if (this.crashAim === null || this.stepOf(kind, p) !== this.crashAim.step || --this.crashAim.left > 0) return;
      }
      this.crashAtCall = 0;
      this.crashAim = null;
      const step = this.stepOf(kind, p);
      this.crashSteps.set(step, (this.crashSteps.get(step) ?? 0) + 1);
      // Dead from here on: nothing it writes or logs while its code unwinds is seen.
      this.dying = new SimCrash(n, kind, p);
      throw this.dying;
    };
  }

  get core(): RaftCore | null {
    return this.server?.core ?? null;
  }

  /** The storage step of a call of this node: while it starts (no core yet), all but lock-meta is recovery. */
  private stepOf(kind: CallKind, p: string): string {
    const step = storageStep(kind, p);
    return this.server !== null && this.server.core === null && step !== 'lock-meta' ? 'recovery' : step;
  }

  /** The state machine of the live process (empty when down). */
  get kv() {
    return this.server!.kv;
  }

  get applied(): number {
    return this.server ? this.server.applied : 0;
  }

  /** Crash the process at its k-th next mutating file-system call (k >= 1). */
  armCrash(k: number): void {
    this.crashAim = null;
    this.crashAtCall = this.fs.calls + Math.max(1, k);
  }

  /** Crash the process at the k-th next mutating call of one storage step (`storageStep`), whenever that comes. */
  aimCrash(step: string, k: number): void {
    this.crashAtCall = 0;
    this.crashAim = { step, left: Math.max(1, k) };
  }

  get crashArmed(): boolean {
    return this.crashAtCall > 0 || this.crashAim !== null;
  }

  disarmCrash(): void {
    this.crashAtCall = 0;
    this.crashAim = null;
  }

  /** Start (or restart) the process: a new server on the same disk, then `init` (with `nodeIds`, default the cluster's). */
  start(nodeIds: readonly NodeId[] = this.peers): void {
    this.incarnation++;
    if (this.incarnation > 1) this.counts.restarts++;
    this.paused = false;
    this.held.length = 0;
    this.fatal = null;
    this.fatalLines.length = 0;
    this.dying = null;
    this.initReply = null;
    this.storage = null;
    this.store = null;
    const host = this.host;
    const inc = this.incarnation;
    const pid = 100 + inc; // a pid per incarnation: the last one's lock is stale
    const sink: LineSink = {
      write: (text) => {
        if (this.dying || this.incarnation !== inc) return;
        let start = 0;
        for (;;) {
          const nl = text.indexOf('\n', start);
          const line = nl < 0 ? text.slice(start) : text.slice(start, nl);
          if (line !== '') this.emit(line);
          if (nl < 0) break;
          start = nl + 1;
        }
      },
      flush: () => Promise.resolve(),
    };
    const timers: Timers = {
      every: (ms, fn) => host.every(this, ms, fn),
      now: () => host.now(),
      yield: () => Promise.resolve(),
    };
    // Snapshot loads run in slices of their own (install.ts): here each slice does a step or two of
    // work and the next comes a simulated millisecond later, so that messages, requests, crashes
    // and the entries committed meanwhile interleave with a load as they do in a real process.
    let work = 0;
    const loadClock: LoadClock = {
      now: () => (work += 2),
      yield: () => {
        this.loadSleeps++;
        return host.sleep(this, 1).then(() => {
          this.loadSleeps--;
        });
      },
    };
    const unsafe = this.broken.ackBeforePersist === true;
    const probe: ServerProbe = {
      // The broken mode skips the store: what the node acknowledges is what it sends with.
      afterSend: unsafe ? () => this.noteAckedFromCore() : undefined,
      applied: (e) => host.observer.onApplied(this, e),
    };
    const log: Logger = {
      info() {},
      debug() {},
      warn: (msg) => this.onWarn(msg, inc),
    };
    const rng = host.rng;
    const [lo, hi] = this.cfg.snapshotDelay;
    const delay = hi > 0 ? () => host.sleep(this, lo + rng.next() * (hi - lo)) : null;
    this.server = new RaftServer({
      outbox: new Outbox(sink),
      options: this.options,
      log,
      openStore: (nodeId) => {
        try {
          const ds = DiskStorage.open(this.dir, {
            fs: this.storageFs,
            fsync: true,
            retain: this.disk.retain,
            segmentBytes: this.disk.segmentBytes,
            pid,
            isPidAlive: (p) => p === pid,
            createdAt: 0,
            now: () => host.now(),
            ...(nodeId !== null ? { nodeId } : {}),
          });
          this.storage = ds;
          const inner = new StorageNodeStore(ds, true, this.dir, log, nodeId, timers.yield, timers.now);
          this.store = new SimStore(this, inner, host.observer, delay);
          return Promise.resolve(this.store);
        } catch (e) {
          return Promise.reject(e instanceof Error ? e : new Error(String(e)));
        }
      },
      random: () => rng.next(),
      timers,
      loadClock,
      probe,
      unsafeAckBeforePersist: unsafe,
      onFatal: (err) => {
        if (this.incarnation === inc) this.fatal ??= err;
      },
    });
    this.up = true;
    this.server.handleLine(JSON.stringify({ src: 'sim', dest: this.id, body: { type: 'init', msg_id: 0, node_id: this.id, node_ids: nodeIds } }));
  }

  private emit(line: string): void {
    const failure = this.storage?.failure ?? null;
    if (failure) {
      try {
        this.host.observer.onOutputAfterFailure(this, line, failure);
      } catch {
        return; // a violation: kept by the simulator (rethrown after the step), the line is not sent
      }
    }
    this.host.route(this, line);
  }

  private onWarn(msg: string, inc: number): void {
    // A dead process's cleanup (or an older incarnation) logs nothing anyone reads.
    if (this.dying || this.incarnation !== inc) return;
    if (msg.startsWith('FATAL:')) {
      // Judged by the simulator together with `fatal`: expected after an injected fault.
      this.fatalLines.push(msg);
      return;
    }
    if (msg.startsWith('recovery (') && CRASH_LEFTOVERS.test(msg)) {
      if (msg.includes('torn tail')) this.tornTails++;
      return;
    }
    this.errors.push(new Error(`${this.id}: ${msg}`));
  }

  /** ack-before-persist: the state the node sends with is all it has (nothing was persisted). */
  private noteAckedFromCore(): void {
    const core = this.core;
    if (!core) return;
    const st = core.status();
    this.acked.offset = st.firstIndex - 1;
    this.acked.terms = core.entries(st.firstIndex, st.lastIndex).map((e) => e.term);
    this.acked.noteHardState({ term: st.term, votedFor: st.votedFor, commit: st.commit });
  }

  /** The process is gone: count its figures, drop it. */
  private down(): void {
    const s = this.server;
    if (s) {
      if (s.core) this.counts.elections += s.core.stats().electionsStarted;
      this.counts.snapshotsTaken += s.stats.snapshotsTaken;
      this.counts.snapshotsInstalled += s.stats.snapshotsInstalled;
      this.counts.followerReads += s.requests.followerReads;
    }
    this.up = false;
    this.paused = false;
    this.server = null;
    this.store = null;
    this.storage = null;
    this.held.length = 0;
    this.loadSleeps = 0;
    this.disarmCrash();
    this.dying = null;
  }

  /** The machine crashes: the process dies and the disk keeps what `how` says (SimFs.crash). */
  crash(how: CrashHow): void {
    this.down();
    this.fs.crash(how, this.disk.crash);
  }

  /** The process exited (after it stopped itself): the disk and its page cache stay as they are. */
  exit(): void {
    this.down();
  }

  /** Snapshot load slices of the live process waiting for simulated time (its load clock). */
  private loadSleeps = 0;

  /** Nothing left to run without simulated time passing (or the process is gone). */
  get quiescent(): boolean {
    const s = this.server;
    if (!this.up || !s) return true;
    // Waiting for an fsync of the WAL (an event to come) is not work to run now (Simulation.settle
    // makes sure that one which just completed has reached the server).
    // So is a snapshot load waiting for its next slice (simulated time).
    if (s.busy && !s.waitingForWrite && this.loadSleeps === 0) return false;
    return !(s.snapshotter.inProgress && !this.store?.sleeping && !this.store?.waitingForDisk);
  }

  /** The live process waits for a WAL fsync (the driver or a snapshot's last stretch). */
  get waitingOnDisk(): boolean {
    const s = this.server;
    return this.up && s !== null && (s.waitingForWrite || this.store?.waitingForDisk === true);
  }

  /** Figures over all incarnations, the live one included. */
  get stats(): { snapshotsTaken: number; snapshotsInstalled: number; snapshotsReceived: number; restarts: number; maxLogLength: number; elections: number; followerReads: number } {
    const s = this.server;
    const c = this.counts;
    return {
      snapshotsTaken: c.snapshotsTaken + (s ? s.stats.snapshotsTaken : 0),
      snapshotsInstalled: c.snapshotsInstalled + (s ? s.stats.snapshotsInstalled : 0),
      snapshotsReceived: this.snapshotsReceived,
      restarts: c.restarts,
      maxLogLength: c.maxLogLength,
      elections: c.elections + (s?.core ? s.core.stats().electionsStarted : 0),
      followerReads: c.followerReads + (s ? s.requests.followerReads : 0),
    };
  }

  /**
   * The WAL of the live incarnation as its storage counts it: segment files and entry records in
   * them, and the indexes the oldest segment spans (from the segment files' first indexes on disk;
   * compaction deletes whole segments, so the oldest may reach below what it had to keep).
   */
  walStats(): { segments: number; entries: number; oldestSpan: number } {
    const s = this.storage!.stats();
    const files = listSegmentFiles(`${this.dir}/wal`, { fs: this.fs });
    const oldestSpan = files.length >= 2 ? files[1]!.firstIndex - files[0]!.firstIndex : s.logEntries;
    return { segments: s.walSegments, entries: s.logEntries, oldestSpan };
  }

  /** Deliver one Maelstrom line to the process (held while paused). */
  deliver(line: string): void {
    if (!this.up || !this.server || this.dying) return;
    if (this.paused) {
      this.held.push(() => {
        if (!this.dying) this.server?.handleLine(line);
      });
      return;
    }
    this.server.handleLine(line);
  }

  /** The log's length after a step (the invariant checker reads the status anyway). */
  noteLogLength(len: number): void {
    if (len > this.counts.maxLogLength) this.counts.maxLogLength = len;
  }

  status() {
    return this.core ? this.core.status() : null;
  }
}
