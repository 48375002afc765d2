/**
 * Which program the cluster's nodes run, and how each is started: raftsnap's own `serve` (the
 * default: `node bin/run.js serve --data-dir <data-root>/<id> ...`, one data directory per node),
 * or any program given with `--bin PATH [-- ARGS...]`, started as Maelstrom's `--bin` starts it:
 * the program with exactly ARGS, every node in one shared working directory.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `bin/run.js` of this package, found relative to this module (src/cluster or dist/cluster). */
export const DEFAULT_NODE_SCRIPT = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** The shared working directory of `--bin` nodes, in the data root. */
export const SHARED_DIR = 'shared';

export interface NodeProgramOptions {
  /** A program speaking Maelstrom's protocol on stdin / stdout (Maelstrom's `--bin`). */
  bin?: string;
  /** Its arguments (what follows `--` on the command line). */
  binArgs?: string[];
  /** Test-only: a script run with node instead of bin/run.js (it still gets `serve --data-dir ...`). */
  nodeScript?: string;
  /** Arguments for `serve` (`--snapshot-threshold` ...), or extra test-only node arguments. */
  serveArgs: string[];
}

export interface NodeProgram {
  kind: 'serve' | 'bin';
  /** What the report shows: the program and its arguments. */
  describe: string;
  /** The directories the run needs in the data root. */
  dirs(ids: readonly string[]): string[];
  command: string;
  args(dataDir: string): string[];
  /** Working directory of every node (`--bin`), or undefined (the runner's own). */
  cwd(dataRoot: string): string | undefined;
  /** Whether to poll `get_stats` (raftsnap's own extension; a foreign node may not know it). */
  stats: boolean;
  /** Directory measured for "data on disk", per node (serve) or for all of them (bin). */
  dataDir(dataRoot: string, id: string): string;
}

/**
 * Resolves the node program, or throws with the reason (no such file, not executable) before the
 * data root is touched.
 */
export function resolveNodeProgram(o: NodeProgramOptions): NodeProgram {
  if (o.bin !== undefined) {
    const path = resolve(o.bin);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      throw new Error(`${o.bin}: no such file (the --bin node program)`);
    }
    if (!isFile) throw new Error(`${o.bin}: not a file (the --bin node program)`);
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new Error(`${o.bin}: not executable (the --bin node program; chmod +x it, with a #! line for a script)`);
    }
    const args = o.binArgs ?? [];
    return {
      kind: 'bin',
      describe: [path, ...args].join(' '),
      dirs: () => [SHARED_DIR],
      command: path,
      args: () => args,
      cwd: (root) => join(root, SHARED_DIR),
      stats: false,
      dataDir: (root) => join(root, SHARED_DIR),
    };
  }
  const script = o.nodeScript ? resolve(o.nodeScript) : DEFAULT_NODE_SCRIPT;
  try {
    statSync(script);
  } catch {
    throw new Error(`${script}: no such file (the node program to run)`);
  }
  return {
    kind: 'serve',
    describe: `${o.nodeScript ? script : 'raftsnap'} serve --data-dir <data-root>/<id> ${o.serveArgs.join(' ')}`.trim(),
    dirs: (ids) => [...ids],
    command: process.execPath,
    args: (dataDir) => [script, 'serve', '--data-dir', dataDir, ...o.serveArgs],
    cwd: () => undefined,
    stats: true,
    dataDir: (root, id) => join(root, id),
  };
}
