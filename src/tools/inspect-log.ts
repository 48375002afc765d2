/**
 * `inspect DIR --log`: the log entries as recovery would rebuild them from the WAL, each with what
 * it is (a leader's no-op, a client's read, write or cas with its key and values, or data the
 * state machine does not execute), filtered by index range, term, operation and key (as
 * etcd-dump-logs and raft-wal's waldump do). Read-only.
 */
import type { Json } from '../raft/types.js';
import { asKvCommand } from '../kv/store.js';
import { sessionOf } from '../kv/sessions.js';
import { LogReplay, StorageError, readWal } from '../storage/index.js';
import { closest } from '../cli/parse.js';
import { keyPredicate } from './dump.js';
import { ToolError } from './errors.js';
import { guard, openReadOnly } from './load.js';

/**
 * What a log entry holds. `noop`: a new leader's entry (`null`); `read`, `write`, `cas`: a lin-kv
 * command (src/kv/store.ts asKvCommand, the rule the node applies by); `other`: any other data,
 * which the state machine skips.
 */
export type EntryOp = 'noop' | 'read' | 'write' | 'cas' | 'other';
export const ENTRY_OPS: readonly EntryOp[] = ['noop', 'read', 'write', 'cas', 'other'];

/** The fields of an entry's command (absent when the operation has none). */
export interface EntryCommand {
  op: EntryOp;
  /** read, write, cas. */
  key?: Json;
  /** write. */
  value?: Json;
  /** cas. */
  from?: Json;
  to?: Json;
  createIfNotExists?: boolean;
  /** A write or cas a follower forwarded: the forward's identity (src/kv/sessions.ts). */
  session?: { origin: string; id: number; low?: number };
}

export function describeEntry(data: Json): EntryCommand {
  if (data === null) return { op: 'noop' };
  const cmd = asKvCommand(data);
  if (!cmd) return { op: 'other' };
  const out: EntryCommand = { op: cmd.op, key: cmd.key };
  if (cmd.op === 'write') out.value = cmd.value;
  if (cmd.op === 'cas') {
    out.from = cmd.from;
    out.to = cmd.to;
    out.createIfNotExists = cmd.create_if_not_exists === true;
  }
  const s = cmd.op === 'read' ? null : sessionOf(data);
  if (s) out.session = s;
  return out;
}

export interface LogRow extends EntryCommand {
  index: number;
  term: number;
  committed: boolean;
  /** The entry's data as it is in the WAL. */
  data: Json;
}

export interface LogFilter {
  from?: number;
  to?: number;
  /** Entries of this term. */
  term?: number;
  /** Operations, e.g. `write,cas` (see ENTRY_OPS). */
  op?: string;
  /** A key as JSON text, as `dump --key` takes it: `7` the integer, `'"7"'` the string, other text a string key. */
  key?: string;
}

export interface LogResult {
  rows: LogRow[];
  /** Entries in the log (in [from, to]) before the term, op and key filters. */
  total: number;
  commit: number;
  warnings: string[];
}

/** The operations of `--op` (comma-separated); BAD_ARGS naming the nearest for a typo. */
export function parseOps(text: string): Set<EntryOp> {
  const out = new Set<EntryOp>();
  for (const raw of text.split(',')) {
    const w = raw.trim();
    const op = w === 'no-op' ? 'noop' : w;
    if (!(ENTRY_OPS as readonly string[]).includes(op)) {
      const near = closest(w, ENTRY_OPS);
      throw new ToolError('BAD_ARGS', null, `--op: unknown operation "${w}"${near ? ` (did you mean ${near}?)` : ''}; expected ${ENTRY_OPS.join(', ')} or a comma-separated list of them`);
    }
    out.add(op as EntryOp);
  }
  return out;
}

/**
 * The log as recovery would rebuild it from the WAL (replaced suffixes dropped), filtered. A torn
 * tail ends the listing with a warning; damage inside the log is an error (`--records` shows it).
 */
export function readLog(dir: string, f: LogFilter = {}): LogResult {
  const from = f.from ?? 0;
  const to = f.to ?? Number.MAX_SAFE_INTEGER;
  if (from > to) throw new ToolError('BAD_ARGS', null, `--from ${from} is after --to ${to}`);
  const ops = f.op !== undefined ? parseOps(f.op) : null;
  const keep = f.key !== undefined ? keyPredicate({ key: f.key }) : null;
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings);
  const replay = new LogReplay();
  guard(() => {
    for (const item of readWal(dd.walDir)) {
      if (item.type === 'damage') {
        if (item.lastSegment && item.tailOnly) {
          warnings.push(`${item.file}: torn tail at offset ${item.offset} (${item.reason}); the listing stops there`);
          break;
        }
        throw new StorageError('CORRUPT_WAL', item.file, `WAL corrupt (not a torn tail): ${item.reason}`, item.offset);
      }
      replay.apply(item, { file: item.file, offset: item.offset });
    }
  }, dir);
  const commit = replay.hardState.commit;
  const first = replay.log.length > 0 ? replay.log[0]!.index : null;
  if (first !== null && f.from !== undefined && from < first) {
    warnings.push(`${dir}: entries before ${first} are no longer in the log (compacted into a snapshot); the listing starts at ${first}`);
  }
  const rows: LogRow[] = [];
  let total = 0;
  for (const e of replay.log) {
    if (e.index < from || e.index > to) continue;
    total++;
    if (f.term !== undefined && e.term !== f.term) continue;
    const c = describeEntry(e.data);
    if (ops !== null && !ops.has(c.op)) continue;
    if (keep !== null && (c.key === undefined || !keep(c.key))) continue;
    rows.push({ index: e.index, term: e.term, committed: e.index <= commit, ...c, data: e.data });
  }
  return { rows, total, commit, warnings };
}
