/**
 * The flags of `raftsnap serve`, their defaults and their help text, shared by the fast path
 * (main.ts, node:util parseArgs) and the oclif command (src/commands/serve.ts, for `--help`).
 */
import { parseArgs } from 'node:util';

export interface ServeOptions {
  /** This node's data directory; null = keep state in memory (unless dataRoot). */
  dataDir: string | null;
  /** Parent of per-node directories: DIR/<node_id> once `init` names the node. */
  dataRoot: string | null;
  fsync: boolean;
  snapshotThreshold: number;
  snapshotThresholdBytes: number;
  snapshotJitter: number;
  trailingLogs: number;
  retain: number;
  chunkSize: number;
  segmentBytes: number;
  tickMs: number;
  electionTimeoutMs: number;
  heartbeatMs: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxAppendEntries: number;
  maxInflight: number;
  requestTimeoutMs: number;
  leaderWaitMs: number;
  logLevel: 'quiet' | 'info' | 'debug';
}

type Kind = 'path' | 'int' | 'bytes' | 'fraction' | 'bool' | 'level';

export interface FlagSpec {
  name: string;
  key: keyof ServeOptions;
  kind: Kind;
  default: string | null;
  description: string;
}

/** Every flag of `serve`, in the order `--help` lists them. */
export const SERVE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'data-dir',
    key: 'dataDir',
    kind: 'path',
    default: null,
    description:
      "This node's data directory (snapshots, write-ahead log, lock file). Recovered at once on start. " +
      'Without --data-dir or --data-root the node keeps its state in memory: Maelstrom and graders start ' +
      'every run in one shared working directory that is never cleaned, so an implicit on-disk default ' +
      "would leak one run's state into the next.",
  },
  {
    name: 'data-root',
    key: 'dataRoot',
    kind: 'path',
    default: null,
    description:
      'Parent directory of per-node data directories: the node uses DIR/<node_id> once `init` names it ' +
      '(Maelstrom starts every node with the same arguments). bin/maelstrom-node sets it from the ' +
      'environment variable RAFTSNAP_DATA_ROOT.',
  },
  {
    name: 'fsync',
    key: 'fsync',
    kind: 'bool',
    default: 'true',
    description:
      'fsync the write-ahead log (group commit: one fsync per batch) before voting, acknowledging an ' +
      'append or answering a client. `--fsync false` is faster and survives a process kill, not a power loss.',
  },
  {
    name: 'snapshot-threshold',
    key: 'snapshotThreshold',
    kind: 'int',
    default: '1000',
    description:
      'Take a snapshot every this many applied entries (0 = never by count). The nodes take turns: node r of N ' +
      '(by sorted id) snapshots at the log indexes k*T + r*T/N, at least T/2 entries after its last snapshot.',
  },
  {
    name: 'snapshot-threshold-bytes',
    key: 'snapshotThresholdBytes',
    kind: 'bytes',
    default: '8MiB',
    description:
      'Also take a snapshot once the commands applied since the last one total this many bytes of JSON ' +
      '(0 = never by size). Accepts suffixes KiB, MiB, GiB.',
  },
  {
    name: 'snapshot-jitter',
    key: 'snapshotJitter',
    kind: 'fraction',
    default: '0.2',
    description:
      'The byte threshold is scaled by a random factor in [1, 1 + jitter), drawn anew after every snapshot, so ' +
      'that the nodes of a cluster do not all snapshot at the same moment (the count threshold takes turns instead).',
  },
  {
    name: 'trailing-logs',
    key: 'trailingLogs',
    kind: 'int',
    default: '500',
    description:
      'Log entries kept before an automatic snapshot index, so that a slightly-behind follower replays ' +
      'log instead of receiving a snapshot.',
  },
  {
    name: 'retain',
    key: 'retain',
    kind: 'int',
    default: '2',
    description: 'Snapshot files kept (the newest ones); older files and log segments they cover are deleted.',
  },
  {
    name: 'chunk-size',
    key: 'chunkSize',
    kind: 'bytes',
    default: '64KiB',
    description: 'Bytes of snapshot per InstallSnapshot message (sent base64-encoded).',
  },
  {
    name: 'segment-size',
    key: 'segmentBytes',
    kind: 'bytes',
    default: '4MiB',
    description:
      'Size at which a write-ahead log segment is closed and a new one started. Segments whose entries ' +
      'all lie at or below the oldest kept snapshot are deleted, so the log on disk stays within a few segments.',
  },
  {
    name: 'tick-ms',
    key: 'tickMs',
    kind: 'int',
    default: '10',
    description: 'Milliseconds per logical tick of the Raft core; the timeouts below are rounded to ticks.',
  },
  {
    name: 'election-timeout-ms',
    key: 'electionTimeoutMs',
    kind: 'int',
    default: '600',
    description:
      'Election timeout: a follower that hears no leader for a random time in [T, 2T) starts a (pre-)vote. ' +
      'The default suits Maelstrom --latency 0 to 100 ms.',
  },
  {
    name: 'heartbeat-ms',
    key: 'heartbeatMs',
    kind: 'int',
    default: '100',
    description: "Interval of the leader's heartbeats (empty appends).",
  },
  {
    name: 'pre-vote',
    key: 'preVote',
    kind: 'bool',
    default: 'true',
    description: 'Ask for a pre-vote before raising the term, so that a node returning from a partition does not disrupt the cluster.',
  },
  {
    name: 'check-quorum',
    key: 'checkQuorum',
    kind: 'bool',
    default: 'true',
    description:
      'A leader that has not heard from a majority within an election timeout steps down, and followers ' +
      'that hear from a live leader ignore vote requests.',
  },
  {
    name: 'max-append-entries',
    key: 'maxAppendEntries',
    kind: 'int',
    default: '256',
    description: 'Most log entries in one append message.',
  },
  {
    name: 'max-inflight',
    key: 'maxInflight',
    kind: 'int',
    default: '64',
    description: 'Most unacknowledged append messages in flight to one follower.',
  },
  {
    name: 'request-timeout-ms',
    key: 'requestTimeoutMs',
    kind: 'int',
    default: '5000',
    description:
      'A client request not answered after this long gets the indefinite error 0 (timeout): it may still take effect.',
  },
  {
    name: 'leader-wait-ms',
    key: 'leaderWaitMs',
    kind: 'int',
    default: '500',
    description:
      'A client request that arrives while no leader is known waits up to this long for one (an election ' +
      'is probably under way) before the definite error 11. 0 = answer 11 at once.',
  },
  {
    name: 'log-level',
    key: 'logLevel',
    kind: 'level',
    default: 'info',
    description: 'What goes to stderr: quiet, info or debug. stdout only ever carries protocol messages.',
  },
];

export class UsageError extends Error {}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, kb: 1000, m: 1 << 20, mib: 1 << 20, mb: 1e6, g: 1 << 30, gib: 1 << 30, gb: 1e9 };

function convert(spec: FlagSpec, raw: string): unknown {
  const bad = (what: string): never => {
    throw new UsageError(`--${spec.name}: expected ${what}, got ${JSON.stringify(raw)}`);
  };
  switch (spec.kind) {
    case 'path':
      if (raw === '') bad('a path');
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw)) bad('a non-negative integer');
      return Number(raw);
    }
    case 'bytes': {
      const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(raw);
      const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) return bad('a size such as 65536, 64KiB or 8MiB');
      return Math.round(Number(m[1]) * unit);
    }
    case 'fraction': {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n) || n < 0) bad('a non-negative number');
      return n;
    }
    case 'bool': {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return bad('true or false');
    }
    case 'level':
      if (raw !== 'quiet' && raw !== 'info' && raw !== 'debug') bad('quiet, info or debug');
      return raw;
  }
}

export function defaultOptions(): ServeOptions {
  const o: Record<string, unknown> = {};
  for (const s of SERVE_FLAGS) o[s.key] = s.default === null ? null : convert(s, s.default);
  return o as unknown as ServeOptions;
}

/** Build options from raw flag strings (missing = default), checking every value and their combination. */
export function optionsFromRaw(raw: Record<string, string | undefined>): ServeOptions {
  const o = defaultOptions() as unknown as Record<string, unknown>;
  for (const s of SERVE_FLAGS) {
    const v = raw[s.name];
    if (v !== undefined) o[s.key] = convert(s, v);
  }
  const opts = o as unknown as ServeOptions;
  if (opts.dataDir !== null && opts.dataRoot !== null) throw new UsageError('--data-dir and --data-root exclude each other');
  if (opts.tickMs < 1) throw new UsageError('--tick-ms must be at least 1');
  if (opts.heartbeatMs < opts.tickMs) throw new UsageError('--heartbeat-ms must be at least --tick-ms');
  if (opts.electionTimeoutMs < 2 * opts.heartbeatMs) throw new UsageError('--election-timeout-ms must be at least twice --heartbeat-ms');
  if (opts.chunkSize < 1) throw new UsageError('--chunk-size must be at least 1 byte');
  if (opts.segmentBytes < 4096) throw new UsageError('--segment-size must be at least 4KiB');
  if (opts.retain < 1) throw new UsageError('--retain must be at least 1');
  if (opts.maxAppendEntries < 1) throw new UsageError('--max-append-entries must be at least 1');
  if (opts.maxInflight < 1) throw new UsageError('--max-inflight must be at least 1');
  return opts;
}

/** Parse `serve`'s argv (without the word `serve`) on the fast path. */
export function parseServeArgs(argv: string[]): ServeOptions {
  const options: Record<string, { type: 'string' }> = {};
  for (const s of SERVE_FLAGS) options[s.name] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    // Every flag takes a value, and takes the next word whatever it looks like: `--snapshot-threshold -1`
    // is the value -1 (refused by the flag's own rule), not an "ambiguous" option.
    const words: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const w = argv[i]!;
      if (w.startsWith('--') && !w.includes('=') && w.slice(2) in options && i + 1 < argv.length) words.push(`${w}=${argv[++i]!}`);
      else words.push(w);
    }
    ({ values } = parseArgs({ args: words, options, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return optionsFromRaw(values as Record<string, string | undefined>);
}

/** Raft timing in ticks. */
export function ticksOf(opts: ServeOptions): { electionTicks: number; heartbeatTicks: number } {
  const heartbeatTicks = Math.max(1, Math.round(opts.heartbeatMs / opts.tickMs));
  const electionTicks = Math.max(heartbeatTicks * 2, Math.round(opts.electionTimeoutMs / opts.tickMs));
  return { electionTicks, heartbeatTicks };
}
