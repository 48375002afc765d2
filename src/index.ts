/**
 * raftsnap as a library: the pure Raft core, the lin-kv state machine, the storage library
 * (snapshot files, write-ahead log, data directories, recovery) and the linearizability checker.
 * The CLI (bin/run.js) is built on the same modules.
 */
export * from './raft/types.js';
export { RaftCore } from './raft/core.js';
export * from './kv/index.js';
export * from './storage/index.js';
export * from './check/index.js';
