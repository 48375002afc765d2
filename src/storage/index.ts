/** Public API of the raftsnap storage library (formats: docs/FORMAT.md). */
export * from './errors.js';
export {
  TEMP_NAME_RE,
  tempName,
  writeFileAtomic,
  fsyncDir,
  renameDurable,
  isPidAlive,
  type IoOptions,
  type SyncOptions,
} from './fsutil.js';
export { fsFault, type FileSystem, type FileStat, type OpenFlags } from './fs.js';
export { nodeFs } from './node-fs.js';
export { MemFs } from './mem-fs.js';
export {
  SNAPSHOT_MAGIC,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_CODEC,
  SNAPSHOT_PREAMBLE_BYTES,
  CHUNK_PAIRS,
  KEY_RUN_MIN,
  DEFAULT_ZSTD_LEVEL,
  SnapshotEncoder,
  encodeSnapshot,
  decodeSnapshot,
  decodeSnapshotHeader,
  verifySnapshotBytes,
  readSnapshotHeader,
  readSnapshotFile,
  verifySnapshotFile,
  writeSnapshotFile,
  snapshotFileName,
  parseSnapshotFileName,
  headerMeta,
  assembleSnapshot,
  type SnapshotHeader,
  type SnapshotContent,
  type EncodeOptions,
  type WriteSnapshotOptions,
  type SnapshotProblem,
} from './snapshot.js';
export {
  WAL_MAGIC,
  WAL_FORMAT_VERSION,
  WAL_READ_VERSIONS,
  WAL_SECTOR_BYTES,
  RECORD_COMMIT,
  encodeCommit,
  sealBatch,
  type CommitRecord,
  SEGMENT_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  DEFAULT_SEGMENT_BYTES,
  RECORD_ENTRY,
  RECORD_HARD_STATE,
  RECORD_SNAPSHOT,
  EMPTY_HARD_STATE,
  segmentFileName,
  parseSegmentFileName,
  encodeSegmentHeader,
  encodeRecord,
  scanSegmentBytes,
  scanSegmentFile,
  listSegmentFiles,
  readWal,
  type WalRecord,
  type WalItem,
  type SegmentScan,
  type SegmentDamage,
  type SegmentFile,
} from './wal.js';
export { WalWriter, newSegmentBytes, type SegmentState, type WalWriterOptions } from './wal-writer.js';
export { LogReplay } from './replay.js';
export * from './datadir.js';
export * from './node-storage.js';
