/**
 * `restore`: build a complete fresh data directory from a snapshot file. The file is verified
 * first; the directory is built next to the target under a temporary name and renamed into place,
 * so that the target is either untouched or complete. With --force an existing target is moved
 * aside first and deleted only once the new one is in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  DataDir,
  WalWriter,
  decodeSnapshot,
  fsyncDir,
  isPidAlive,
  readLockPid,
  renameDurable,
  snapshotFileName,
  writeSnapshotFile,
  type SnapshotContent,
  type SnapshotHeader,
} from '../storage/index.js';
import type { NodeId } from '../raft/types.js';
import { ToolError, toToolError } from './errors.js';
import { diffStates } from './diff.js';
import { guard, isoTime, loadDirState, pathKind, snapshotState, toolNow } from './load.js';

export interface RestoreResult {
  file: string;
  dataDir: string;
  nodeId: NodeId | null;
  index: number;
  term: number;
  config: NodeId[];
  keys: number;
  hardState: { term: number; votedFor: null; commit: number };
  /** The previous contents of the target were replaced (--force). */
  replaced: boolean;
  /** The new directory recovers exactly the snapshot's state. */
  verified: boolean;
  createdAt: string;
}

/** Read a snapshot file once: its bytes (copied as they are when the configuration stays) and its verified, decoded contents. */
function readSnapshotFully(file: string): { header: SnapshotHeader; content: SnapshotContent; bytes: Buffer } {
  if (pathKind(file) === 'dir') throw new ToolError('ENOTDIR', file, 'is a directory, expected a snapshot file');
  const bytes = guard(() => fs.readFileSync(file), file);
  const { header, content } = guard(() => decodeSnapshot(bytes, file), file);
  return { header, content, bytes };
}

/** `--config n1,n2,n3`: node ids separated by commas (or spaces), no duplicates. */
export function parseConfig(text: string): NodeId[] {
  const ids = text.split(/[\s,]+/).filter(Boolean);
  if (ids.length === 0) throw new ToolError('BAD_ARGS', null, '--config needs at least one node id (e.g. --config n1,n2,n3)');
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new ToolError('BAD_ARGS', null, `--config names ${id} twice`);
    seen.add(id);
  }
  return ids;
}

export interface RestoreOptions {
  nodeId?: string;
  force?: boolean;
  /**
   * The voting members to record instead of the file's own configuration (as `etcdutl snapshot
   * restore --initial-cluster` does), in the restored snapshot and as the directory's members
   * (meta.json), which the node's `init` must then list exactly: restoring a backup of a 3-node
   * cluster onto a single node needs `[that node]`.
   */
  config?: NodeId[];
}

export function restoreSnapshot(file: string, dataDir: string, opts: RestoreOptions = {}): RestoreResult {
  // 1. The snapshot must be sound before anything is touched.
  const { header, content, bytes } = readSnapshotFully(file);
  const config = opts.config ? [...opts.config] : [...header.config];
  const snapState = snapshotState(file, { ...header, config }, content);

  // 2. The target: absent, an empty directory, or (with --force) anything not held by a live node.
  let exists = false;
  let nonEmpty = false;
  let oldNodeId: string | null = null;
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw toToolError(e, dataDir);
  }
  if (st) {
    exists = true;
    if (!st.isDirectory()) throw new ToolError('ENOTDIR', dataDir, 'exists and is not a directory');
    const entries = guard(() => fs.readdirSync(dataDir), dataDir);
    nonEmpty = entries.length > 0;
    const pid = guard(() => readLockPid(dataDir), dataDir);
    if (pid !== null && isPidAlive(pid)) {
      throw new ToolError('LOCKED', dataDir, `directory is in use by pid ${pid}; stop that node before restoring into it (nothing was changed)`);
    }
    if (nonEmpty && !opts.force) {
      throw new ToolError('NOT_EMPTY', dataDir, `directory is not empty (${entries.length} entries); use --force to replace it (nothing was changed)`);
    }
    try {
      oldNodeId = DataDir.open(dataDir, { mode: 'read' }).meta.nodeId;
    } catch {
      oldNodeId = null;
    }
  }
  const nodeId = opts.nodeId ?? oldNodeId ?? header.nodeId ?? null;
  if (opts.config) {
    if (nodeId === null) throw new ToolError('BAD_ARGS', null, '--config needs a node id: give --node-id too');
    if (!config.includes(nodeId)) {
      throw new ToolError('BAD_ARGS', null, `--config ${config.join(',')} does not include this node, ${nodeId} (nothing was changed)`);
    }
  }
  if (!opts.config && nodeId !== null && config.length > 0 && !config.includes(nodeId)) {
    throw new ToolError(
      'BAD_ARGS',
      null,
      `node ${nodeId} is not a member of the snapshot's configuration (${config.join(', ')}); give --config with the members of the cluster it will run in (nothing was changed)`,
    );
  }
  const rewrite = opts.config !== undefined && config.join('\0') !== header.config.join('\0');

  // 3. Build the new directory next to the target.
  const parent = path.dirname(path.resolve(dataDir));
  guard(() => fs.mkdirSync(parent, { recursive: true }), path.dirname(dataDir));
  const tmp = path.join(path.dirname(dataDir), `.${path.basename(dataDir)}.restore-${process.pid}`);
  guard(() => fs.rmSync(tmp, { recursive: true, force: true }), tmp);
  const createdAt = toolNow();
  const hardState = { term: header.term, votedFor: null, commit: header.index };
  try {
    const dd = guard(() => DataDir.create(tmp, { nodeId: nodeId ?? undefined, createdAt }), tmp);
    try {
      // The members the node will have to be started with (its `init` must list exactly these).
      if (config.length > 0) guard(() => dd.setMembers(config), tmp);
      if (rewrite) {
        // Same index, term and state; a new configuration means a new header, so a new file.
        guard(
          () => writeSnapshotFile(dd.snapDir, { index: header.index, term: header.term, config }, content, { createdAt, nodeId }),
          dd.snapDir,
        );
      } else guard(() => writeSnapshotFile(dd.snapDir, bytes), dd.snapDir);
      guard(() => {
        const w = new WalWriter(dd.walDir, [], { hardState, lastIndex: header.index });
        w.add({ type: 'snapshot', index: header.index, term: header.term, file: snapshotFileName(header) });
        w.close();
      }, dd.walDir);
    } finally {
      dd.close();
    }
    // 4. It must recover exactly the snapshot's state.
    const back = loadDirState(tmp);
    const d = diffStates({ ...snapState, kind: 'dir' }, back.state);
    if (!d.equal || !d.membership.equal || back.state.header.index !== header.index) {
      throw new ToolError('INTERNAL', dataDir, 'the restored directory does not recover the snapshot state; nothing was changed');
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }

  // 5. Into place.
  let aside: string | null = null;
  if (exists) {
    if (nonEmpty) {
      aside = path.join(path.dirname(dataDir), `.${path.basename(dataDir)}.old-${process.pid}`);
      guard(() => fs.rmSync(aside!, { recursive: true, force: true }), aside);
      guard(() => renameDurable(dataDir, aside!), dataDir);
    } else {
      guard(() => fs.rmdirSync(dataDir), dataDir);
    }
  }
  try {
    guard(() => renameDurable(tmp, dataDir), dataDir);
  } catch (e) {
    if (aside) fs.renameSync(aside, dataDir);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (aside) guard(() => fs.rmSync(aside!, { recursive: true, force: true }), aside);
  guard(() => fsyncDir(path.dirname(path.resolve(dataDir))), dataDir);
  return {
    file,
    dataDir,
    nodeId,
    index: header.index,
    term: header.term,
    config,
    keys: snapState.pairs.length,
    hardState,
    replaced: nonEmpty,
    verified: true,
    createdAt: isoTime(createdAt),
  };
}
