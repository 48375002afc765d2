/**
 * `inspect`: what a snapshot file or a data directory holds, without changing anything. The log
 * views are inspect-log.ts (--log) and inspect-wal.ts (--records, a WAL segment file), the
 * checksum check inspect-verify.ts; this module re-exports them.
 */
import path from 'node:path';
import type { HardState, Json, NodeId } from '../raft/types.js';
import { encodeCbor } from '../storage/codec.js';
import { readSnapshotHeader, type SnapshotHeader } from '../storage/index.js';
import { startProgress } from '../cli/progress.js';
import { ToolError, toToolError } from './errors.js';
import { retype, retypeError, underBase } from './files.js';
import { guard, isoTime, openReadOnly } from './load.js';
import { compareKeys, countSessions } from './state.js';
import { openStateStream } from './state-stream.js';
import { TopList, summarizeSnapshot } from './top-keys.js';
import fs from 'node:fs';

export { readLog, describeEntry, ENTRY_OPS, type LogRow, type LogFilter, type LogResult, type EntryOp, type EntryCommand } from './inspect-log.js';
export { verifyPath, type VerifyCheck, type VerifyResult } from './inspect-verify.js';
export {
  readRecords,
  readSegmentFile,
  scanRecords,
  scanSegmentRecords,
  RecordTotals,
  fileKind,
  type RecordsResult,
  type RecordsScan,
  type SegmentRecords,
  type RawRecord,
} from './inspect-wal.js';

export interface HeaderInfo {
  formatVersion: number;
  index: number;
  term: number;
  config: NodeId[];
  createdAt: string;
  nodeId: NodeId | null;
  codec: string;
  rawSize: number;
  compressedSize: number;
  /** rawSize / compressedSize, 2 decimals. */
  ratio: number;
  keyCount: number;
  hasSessions: boolean;
  headerChecksum: 'ok';
  /** 'not checked' in header-only mode (the payload is not read). */
  payloadChecksum: 'ok' | 'not checked';
}

export interface TopKey {
  key: Json;
  /** CBOR bytes of key + value (before compression). */
  bytes: number;
  keyBytes: number;
  valueBytes: number;
}

export interface InspectSnapshotResult {
  kind: 'snapshot';
  file: string;
  fileSize: number;
  header: HeaderInfo;
  /** Null in header-only mode. */
  keys: number | null;
  sessions: number | null;
  top: TopKey[];
}

function headerInfo(h: SnapshotHeader, payloadChecked: boolean): HeaderInfo {
  return {
    formatVersion: h.formatVersion,
    index: h.index,
    term: h.term,
    config: [...h.config],
    createdAt: isoTime(h.createdAt),
    nodeId: h.nodeId,
    codec: h.codec,
    rawSize: h.rawSize,
    compressedSize: h.compressedSize,
    ratio: h.compressedSize > 0 ? Math.round((h.rawSize / h.compressedSize) * 100) / 100 : 0,
    keyCount: h.keyCount,
    hasSessions: h.hasSessions,
    headerChecksum: 'ok',
    payloadChecksum: payloadChecked ? 'ok' : 'not checked',
  };
}

/** Largest `n` pairs by encoded size; ties by key order. */
export function topKeys(pairs: Array<[Json, Json]>, n: number): TopKey[] {
  if (n <= 0) return [];
  const all: TopKey[] = [];
  const bar = startProgress('sizing keys', pairs.length > 200_000 ? pairs.length : 0);
  let i = 0;
  for (const [k, v] of pairs) {
    const keyBytes = encodeCbor(k).length;
    const valueBytes = encodeCbor(v).length;
    all.push({ key: k, bytes: keyBytes + valueBytes, keyBytes, valueBytes });
    if ((++i & 0xffff) === 0) bar.update(i);
  }
  bar.stop();
  all.sort((a, b) => b.bytes - a.bytes || compareKeys(a.key, b.key));
  return all.slice(0, n);
}

/**
 * The file's length against what its header records (the check a full read makes; `--header`
 * does not read the payload, but it must not call a cut file fine).
 */
function checkHeaderLength(h: SnapshotHeader & { fileSize: number }, file: string): void {
  const expected = h.payloadOffset + h.compressedSize;
  if (h.fileSize < expected) {
    throw new ToolError(
      'TRUNCATED',
      file,
      `truncated snapshot: header announces ${h.compressedSize} payload bytes but the file ends after ${h.fileSize - h.payloadOffset} (file ${h.fileSize} bytes, expected ${expected}) (at offset ${h.fileSize})`,
    );
  }
  if (h.fileSize > expected) {
    throw new ToolError('BAD_PAYLOAD', file, `${h.fileSize - expected} unexpected bytes after the snapshot payload (expected ${expected} bytes) (at offset ${expected})`);
  }
}

/** Header only (a few hundred bytes are read; the payload is never touched) or the whole file. */
export function inspectSnapshot(file: string, opts: { top?: number; headerOnly?: boolean } = {}): InspectSnapshotResult {
  if (opts.headerOnly) {
    const h = guard(() => readSnapshotHeader(file), file);
    checkHeaderLength(h, file);
    return { kind: 'snapshot', file, fileSize: h.fileSize, header: headerInfo(h, false), keys: null, sessions: null, top: [] };
  }
  const fileSize = guard(() => fs.statSync(file).size, file);
  // Streamed a chunk at a time (src/tools/top-keys.ts): one chunk and the top list, not the state.
  const sum = summarizeSnapshot(file, opts.top ?? 10);
  return {
    kind: 'snapshot',
    file,
    fileSize,
    header: headerInfo(sum.header, true),
    keys: sum.keys,
    sessions: countSessions(sum.sessions),
    top: sum.top,
  };
}

// ------------------------------------------------------------------------------------------------
// Directories

export interface DirSnapshotInfo {
  file: string;
  index: number;
  term: number;
  size: number;
  createdAt: string | null;
  keys: number | null;
  /** 'ok' means the header checks (the payload is checked by --verify and by recovery). */
  status: 'ok' | 'broken';
  problem: string | null;
}

export interface DirSegmentInfo {
  file: string;
  seq: number;
  firstIndex: number;
  size: number;
  entries: number;
  /** Index range of the entries recorded (0..0 when none). */
  minIndex: number;
  maxIndex: number;
  status: 'ok' | 'torn tail' | 'damaged' | 'unreadable';
  problem: string | null;
}

export interface InspectDirResult {
  kind: 'dir';
  dir: string;
  nodeId: NodeId | null;
  formatVersion: number;
  created: string;
  lock: { pid: number | null; live: boolean };
  snapshots: DirSnapshotInfo[];
  wal: DirSegmentInfo[];
  leftovers: Array<{ file: string; kind: string; size: number }>;
  hardState: HardState | null;
  /** What recovery would load; `error` when it would fail. */
  recovery: {
    snapshot: string | null;
    snapshotIndex: number;
    snapshotTerm: number;
    entries: number;
    firstIndex: number | null;
    /** Null when recovery would fail (unknown). */
    lastIndex: number | null;
    commit: number | null;
    uncommitted: number | null;
    error: { code: string; message: string } | null;
  };
  /** The state recovery would serve (at the commit index); null when recovery would fail. */
  state: DirStateSummary | null;
  sizes: { snapshots: number; wal: number; leftovers: number; total: number };
  warnings: string[];
}

export interface DirStateSummary {
  /** The commit index, and its term. */
  index: number;
  term: number;
  keys: number;
  /** Client-session origins (null: no table). */
  sessions: number | null;
  /** Largest keys by encoded size (`--top`). */
  top: TopKey[];
}

/**
 * Key count and largest keys of the state a directory would recover (its newest good snapshot plus
 * the committed log), streamed as `dump` and `hash` read it (src/tools/state-stream.ts): one chunk
 * of the snapshot, the keys the log touches and the top list are held, never the state.
 */
export function summarizeDirState(dir: string, top: number): DirStateSummary {
  const st = openStateStream(dir);
  const list = new TopList(top);
  let keys = 0;
  try {
    for (const c of st.columns()) {
      keys += c.keys.length;
      if (top > 0) for (let i = 0; i < c.keys.length; i++) list.offer(c.keys[i]!, encodeCbor(c.keys[i]!).length, encodeCbor(c.values[i]!).length);
    }
  } finally {
    st.close();
  }
  return { index: st.info.index, term: st.info.term, keys, sessions: countSessions(st.sessions()), top: list.list };
}

/** A path of the library (joined onto `dir`) as the user typed `dir`. */
const rel = underBase;

export function inspectDir(dir: string, opts: { top?: number } = {}): InspectDirResult {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings);
  const snapshots: DirSnapshotInfo[] = guard(() => dd.listSnapshots(), dir).map((s) => ({
    file: rel(dir, s.path),
    index: s.index,
    term: s.term,
    size: s.size,
    createdAt: s.header ? isoTime(s.header.createdAt) : null,
    keys: s.header ? s.header.keyCount : null,
    status: s.error ? 'broken' : 'ok',
    problem: s.error ? retype(dir, s.error.message) : null,
  }));
  const segs = guard(() => dd.listSegments(), dir);
  const wal: DirSegmentInfo[] = segs.map((s, i) => {
    let status: DirSegmentInfo['status'] = 'ok';
    let problem: string | null = null;
    if (s.error) {
      status = 'unreadable';
      problem = retype(dir, s.error.message);
    } else if (s.damage) {
      status = i === segs.length - 1 && s.damage.tailOnly ? 'torn tail' : 'damaged';
      problem = `${s.damage.reason} at offset ${s.damage.offset}`;
    }
    return { file: rel(dir, s.path), seq: s.seq, firstIndex: s.firstIndex, size: s.size, entries: s.entryCount, minIndex: s.minIndex, maxIndex: s.maxIndex, status, problem };
  });
  const leftovers = guard(() => dd.leftovers(), dir).map((l) => ({ file: rel(dir, l.path), kind: l.kind, size: l.size }));
  let hardState: HardState | null = null;
  for (const s of segs) if (s.hardState) hardState = s.hardState;

  let state: DirStateSummary | null = null;
  const recovery: InspectDirResult['recovery'] = {
    snapshot: null,
    snapshotIndex: 0,
    snapshotTerm: 0,
    entries: 0,
    firstIndex: null,
    lastIndex: 0,
    commit: 0,
    uncommitted: 0,
    error: null,
  };
  try {
    const r = dd.recover({ repair: false, loadContent: false });
    for (const w of r.warnings) {
      warnings.push(retype(dir, w.message));
      if (w.kind !== 'broken-snapshot') continue;
      // The listing checked only headers; recovery checked the payload too.
      const s = snapshots.find((x) => path.resolve(x.file) === path.resolve(w.file));
      if (s) {
        s.status = 'broken';
        s.problem = retype(dir, w.message);
      }
    }
    if (r.snapshot) {
      recovery.snapshot = rel(dir, r.snapshot.path);
      recovery.snapshotIndex = r.snapshot.header.index;
      recovery.snapshotTerm = r.snapshot.header.term;
    }
    recovery.entries = r.entries.length;
    recovery.firstIndex = r.entries.length > 0 ? r.entries[0]!.index : null;
    recovery.lastIndex = r.lastIndex;
    const commit = Math.min(r.hardState.commit, r.lastIndex);
    recovery.commit = commit;
    recovery.uncommitted = r.entries.filter((e) => e.index > commit).length;
    hardState = r.hardState;
    state = summarizeDirState(dir, opts.top ?? 10);
  } catch (e) {
    const t = retypeError(dir, toToolError(e, dir));
    recovery.lastIndex = null;
    recovery.commit = null;
    recovery.uncommitted = null;
    recovery.error = { code: t.code, message: t.message };
    warnings.push(`recovery would fail: ${t.message}`);
  }
  for (const s of snapshots) if (s.status === 'broken' && !warnings.some((w) => w.includes(s.file))) warnings.push(`${s.problem}`);
  for (const l of leftovers) {
    if (!warnings.some((w) => w.includes(l.file))) warnings.push(`${l.file}: leftover ${l.kind} file (${l.size} bytes)`);
  }
  const sum = (xs: Array<{ size: number }>) => xs.reduce((n, x) => n + x.size, 0);
  const sizes = { snapshots: sum(snapshots), wal: sum(wal), leftovers: sum(leftovers), total: 0 };
  sizes.total = sizes.snapshots + sizes.wal + sizes.leftovers;
  return {
    kind: 'dir',
    dir,
    nodeId: dd.meta.nodeId,
    formatVersion: dd.meta.version,
    created: isoTime(dd.meta.created),
    lock: { pid: dd.lockedBy ?? dd.staleLockPid, live: dd.lockedBy !== null },
    snapshots,
    wal,
    leftovers,
    hardState,
    recovery,
    state,
    sizes,
    warnings,
  };
}
