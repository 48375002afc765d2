/**
 * The fast path of `raftsnap serve`: bin/run.js imports this module directly (no oclif) so that a
 * node answers `init` quickly. Reads Maelstrom messages from stdin, writes messages to stdout, logs
 * to stderr; on stdin EOF finishes what was asked and lets the process end by itself (exit 0).
 */
import { stderrLogger } from './log.js';
import { parseServeArgs, UsageError, type ServeOptions } from './options.js';
import { LineSplitter, Outbox, StdoutSink } from './protocol.js';
import { markReported } from './reported.js';
import { RaftServer } from './server.js';

export const UNSAFE_ENV = 'RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST';
export const UNSAFE_READS_ENV = 'RAFTSNAP_UNSAFE_LOCAL_READS';

export async function main(argv: string[]): Promise<void> {
  let opts: ServeOptions;
  try {
    opts = parseServeArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`raftsnap serve: ${e.message}\nSee raftsnap serve --help.\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  await runServe(opts);
}

export async function runServe(opts: ServeOptions): Promise<void> {
  const log = stderrLogger(opts.logLevel);
  const unsafe = process.env[UNSAFE_ENV] === '1';
  if (unsafe) {
    log.warn(
      `!!!!! WARNING: ${UNSAFE_ENV}=1: this node acknowledges votes, appends and client writes WITHOUT ` +
        'persisting log entries or hard state. It WILL lose acknowledged writes on a crash. Test-only. !!!!!',
    );
  }
  const unsafeReads = process.env[UNSAFE_READS_ENV] === '1';
  if (unsafeReads) {
    log.warn(
      `!!!!! WARNING: ${UNSAFE_READS_ENV}=1: this node answers reads on the leader from local state WITHOUT ` +
        'confirming its leadership (no ReadIndex round). A deposed leader WILL answer stale reads. Test-only. !!!!!',
    );
  }
  // With a data directory recovery comes before init_ok; start loading the storage code now so
  // that it overlaps the wait for `init`.
  if (opts.dataDir !== null || opts.dataRoot !== null) void import('./storage-adapter.js').catch(() => {});
  const locks = holdLocks(log);
  const open = async (nodeId: string | null) => {
    const { openNodeStore, dataDirFor } = await import('./storage-adapter.js');
    const store = await openNodeStore(opts, nodeId, log);
    const dir = dataDirFor(opts, nodeId);
    if (dir !== null) await locks.add(dir);
    return store;
  };
  // --data-dir: opened and recovered before anything is read, and a failure (a file, a directory
  // that is not a data directory, a live lock, a corrupt WAL) said at once in one line, not only
  // when `init` arrives; `init` is still answered with the error (docs/SERVE.md), and the process
  // exits non-zero (2: cannot open, 1: cannot recover), also when no input ever comes.
  type Store = Awaited<ReturnType<typeof open>>;
  let first: Promise<Store> | null = null;
  let handedOver = false;
  let startFailed = false;
  if (opts.dataDir !== null) {
    const dir = opts.dataDir;
    first = (async () => {
      let store: Store;
      try {
        store = await open(null);
      } catch (e) {
        startFailed = true;
        log.warn(`FATAL: cannot open the data directory: ${(e as Error).message ?? String(e)}`);
        markReported(e);
        process.exitCode = 2;
        throw e;
      }
      // Once: the node's own call (at init) gets this same result.
      let rec: ReturnType<Store['recover']>;
      try {
        rec = store.recover();
      } catch (e) {
        rec = Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      store.recover = () => rec;
      try {
        await rec;
      } catch (e) {
        startFailed = true;
        const damaged = /CORRUPT|BAD_|TRUNCATED|LOG_GAP|COMMIT_BEYOND/.test(String((e as { code?: unknown }).code ?? ''));
        const hint = damaged ? `; \`raftsnap repair ${dir} --dry-run\` shows what a repair would keep and lose` : '';
        log.warn(`FATAL: cannot recover the data directory ${dir}: ${(e as Error).message ?? String(e)}${hint}`);
        markReported(e);
        process.exitCode = 1;
      }
      return store;
    })();
    await first.catch(() => {});
  }
  const sink = new StdoutSink(process.stdout);
  let stdoutBroken = false;
  process.stdout.on('error', (e) => {
    if (!stdoutBroken) log.warn(`stdout: ${(e as Error).message}`);
    stdoutBroken = true;
  });
  const outbox = new Outbox(sink);
  // Backpressure: while stdout cannot take more, stdin is not read (the node's memory stays bounded;
  // what it would read waits in the pipe and in the sender).
  sink.onBackpressure = (full) => {
    if (full) process.stdin.pause();
    else process.stdin.resume();
  };
  const server = new RaftServer({
    outbox,
    options: opts,
    log,
    // Loaded on demand: the storage library (cbor-x, zstd) costs tens of ms to load, which an
    // in-memory node spends after its init_ok rather than before.
    openStore: async (nodeId) => {
      if (first !== null && !handedOver) {
        handedOver = true;
        return first;
      }
      return open(nodeId);
    },
    unsafeAckBeforePersist: unsafe,
    unsafeLocalReads: unsafeReads,
    onFatal: () => {
      // Fail-stop: the server has answered what it owed and logged why; stop reading and exit 1
      // (after a failed start: the start's code, 2 cannot open or 1 cannot recover, as without init).
      const code = startFailed && typeof process.exitCode === 'number' && process.exitCode !== 0 ? process.exitCode : 1;
      process.exitCode = code;
      process.stdin.destroy();
      stdinDone?.();
      // Whatever else still holds the event loop (a background snapshot's yields, a blocked
      // stdout), the process is gone within seconds.
      setTimeout(() => process.exit(code), 2000).unref();
    },
  });
  let stdinDone: (() => void) | null = null;
  const splitter = new LineSplitter((line, tooLong) => server.handleLine(line, tooLong));
  process.stdin.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    stdinDone = resolve;
    process.stdin.on('data', (chunk: string) => splitter.push(chunk));
    process.stdin.on('end', () => resolve());
    process.stdin.on('error', (e) => {
      log.warn(`stdin: ${e.message}`);
      resolve();
    });
  });
  splitter.end();
  await server.end();
  // A store opened at start that no init took over holds only its LOCK: released on exit (holdLocks).
  if (startFailed && (process.exitCode === undefined || process.exitCode === 0)) process.exitCode = 1;
  process.stdin.pause();
}

/**
 * The LOCKs this process took: released on every exit this process controls (a normal end, a
 * fail-stop, process.exit, SIGTERM and SIGINT, which stop the node at once: nothing unsynced was
 * acknowledged), so that a stopped node leaves no LOCK behind. Only SIGKILL leaves one, which the
 * next start takes over as stale, saying so.
 */
function holdLocks(log: ReturnType<typeof stderrLogger>): { add(dir: string): Promise<void> } {
  const dirs = new Set<string>();
  let release: ((dir: string) => void) | null = null;
  const releaseAll = () => {
    for (const d of dirs) release?.(d);
    dirs.clear();
  };
  process.on('exit', releaseAll);
  for (const [sig, n] of [['SIGTERM', 15], ['SIGINT', 2]] as const) {
    process.on(sig, () => {
      log.warn(`${sig}: stopping now${dirs.size > 0 ? `; lock of ${[...dirs].join(', ')} released` : ''}`);
      releaseAll();
      process.exit(128 + n);
    });
  }
  return {
    async add(dir: string) {
      const { LOCK_FILE, readLockPid } = await import('../storage/index.js');
      const { unlinkSync } = await import('node:fs');
      const { join } = await import('node:path');
      release = (d: string) => {
        try {
          if (readLockPid(d) === process.pid) unlinkSync(join(d, LOCK_FILE));
        } catch {
          // gone already
        }
      };
      dirs.add(dir);
    },
  };
}
