/**
 * The fast path of `raftsnap serve`: bin/run.js imports this module directly (no oclif) so that a
 * node answers `init` quickly. Reads Maelstrom messages from stdin, writes messages to stdout, logs
 * to stderr; on stdin EOF finishes what was asked and lets the process end by itself (exit 0).
 */
import { stderrLogger } from './log.js';
import { parseServeArgs, UsageError, type ServeOptions } from './options.js';
import { LineSplitter, Outbox, StdoutSink } from './protocol.js';
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
  const sink = new StdoutSink(process.stdout);
  let stdoutBroken = false;
  process.stdout.on('error', (e) => {
    if (!stdoutBroken) log.warn(`stdout: ${(e as Error).message}`);
    stdoutBroken = true;
  });
  const outbox = new Outbox(sink);
  const server = new RaftServer({
    outbox,
    options: opts,
    log,
    // Loaded on demand: the storage library (cbor-x, zstd) costs tens of ms to load, which an
    // in-memory node spends after its init_ok rather than before.
    openStore: async (nodeId) => (await import('./storage-adapter.js')).openNodeStore(opts, nodeId, log),
    unsafeAckBeforePersist: unsafe,
    unsafeLocalReads: unsafeReads,
    onFatal: () => {
      // Fail-stop: the server has answered what it owed and logged why; stop reading and exit 1.
      process.exitCode = 1;
      process.stdin.destroy();
      stdinDone?.();
      // Whatever else still holds the event loop (a background snapshot's yields, a blocked
      // stdout), the process is gone within seconds.
      setTimeout(() => process.exit(1), 2000).unref();
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
  process.stdin.pause();
}
