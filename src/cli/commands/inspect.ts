import { plural, prose } from '../text.js';
import { EXIT_DIFFERENT, EXIT_ERROR } from '../run.js';
import { emit, warn, type CommandSpec, type Io } from '../spec.js';
import { formatBytes, renderFields, renderTable } from '../table.js';
import { ToolError } from '../../tools/errors.js';
import {
  fileKind,
  inspectDir,
  inspectSnapshot,
  readLog,
  scanRecords,
  scanSegmentRecords,
  verifyPath,
  RecordTotals,
  type EntryCommand,
  type InspectDirResult,
  type InspectSnapshotResult,
  type LogResult,
  type RawRecord,
  type RecordsResult,
  type RecordsScan,
  type SegmentRecords,
  type TopKey,
  type VerifyResult,
} from '../../tools/inspect.js';
import { pathKind } from '../../tools/load.js';
import { showJson } from '../../tools/state.js';
import type { Json } from '../../raft/types.js';

const inspect: CommandSpec = {
  id: 'inspect',
  summary: 'Show what a snapshot file, a WAL segment or a data directory holds (read-only).',
  description: prose(`A snapshot file: its header (index, term, configuration, creation time, sizes and ratio,
checksum status), the key count and the largest keys by encoded size. --header reads only the
header (a few hundred bytes; the payload is not read or decompressed).

A data directory: its snapshots and WAL segments with their index ranges, the hard state, the
commit index, what recovery would load, the key count and largest keys of the state it would
recover (its newest good snapshot plus the committed log), and warnings (broken files, torn tail,
leftovers, a live lock: the directory is read anyway, nothing is changed).

--log lists the log entries of a directory as recovery rebuilds them: index, term, whether
committed, and what each is (noop: a new leader's entry; read, write, cas: a client command with
its key and values; other: data the state machine skips), NDJSON with --json. --from and --to
limit the indexes, --term N keeps the entries of term N, --op the operations given (e.g.
--op write,cas), --key K the commands on key K (K is JSON, as for dump: 7 is the integer, '"7"'
the string; text that is not JSON is a string key); they combine.

--records (or a WAL segment file as the path) shows the raw WAL: every segment in order with its
header, then each record with its byte offset and size (entry, hard state, snapshot marker, and
format 2's zero padding and commit records; records after the last commit record are unsealed).
A torn tail or a damaged record is shown where it is and the next segment is read; exit 1 when a
segment is damaged (a torn tail of the last segment is a warning).

--verify checks every checksum of the file or of every file in the directory and exits 1 when
any fails. Errors (missing path, not a snapshot or WAL segment, damaged file) print one line and
exit 2.`),
  examples: [
    'inspect backup.snap --top 5',
    'inspect backup.snap --header --json',
    'inspect ./raftsnap-data/n1',
    'inspect ./raftsnap-data/n1 --verify',
    'inspect ./raftsnap-data/n1 --log --from 100 --to 120',
    'inspect ./raftsnap-data/n1 --log --term 3 --op write,cas --key 7',
    'inspect ./raftsnap-data/n1 --log --json | jq -c .data',
    'inspect ./raftsnap-data/n1 --records',
    'inspect ./raftsnap-data/n1/wal/000000000000000b-000000000000010f.wal --json',
  ],
  args: [{ name: 'path', description: 'snapshot file or data directory', required: true }],
  flags: [
    { name: 'top', kind: 'integer', description: 'how many of the largest keys to list (a snapshot, or the state a directory recovers)', default: 10, min: 0 },
    { name: 'header', kind: 'boolean', description: 'snapshot file: read the header only (payload not read)' },
    { name: 'verify', kind: 'boolean', description: 'check every checksum; exit 1 on any failure', exclusive: ['log', 'header', 'records'] },
    { name: 'log', kind: 'boolean', description: 'data directory: list log entries (NDJSON with --json)', exclusive: ['header', 'records'] },
    { name: 'records', kind: 'boolean', description: 'data directory: every WAL record of every segment, with offsets', exclusive: ['header'] },
    { name: 'from', kind: 'integer', description: 'with --log: first index to list', min: 0, dependsOn: ['log'] },
    { name: 'to', kind: 'integer', description: 'with --log: last index to list', min: 0, dependsOn: ['log'] },
    { name: 'term', kind: 'integer', description: 'with --log: only the entries of this term', min: 0, dependsOn: ['log'] },
    { name: 'op', kind: 'string', description: 'with --log: only these operations (noop, read, write, cas, other; comma-separated)', helpValue: 'OPS', dependsOn: ['log'] },
    { name: 'key', kind: 'string', description: 'with --log: only the commands on this key (JSON text; other text is a string key)', helpValue: 'KEY', dependsOn: ['log'] },
  ],
  run({ args, flags, io }) {
    const p = args['path']!;
    if (flags['verify']) {
      const r = verifyPath(p);
      for (const w of r.warnings) warn(io, w);
      if (!r.ok && !io.json) {
        const first = r.checks.find((c) => !c.ok)!;
        io.stderr(`raftsnap inspect: ${first.file}: ${first.detail}\n`);
      }
      return emit(io, r, renderVerify, r.ok ? 0 : EXIT_DIFFERENT);
    }
    const kind = pathKind(p);
    if (flags['log']) {
      if (kind !== 'dir') throw new ToolError('BAD_ARGS', p, '--log needs a data directory (a snapshot file holds no log; `raftsnap inspect FILE.wal` lists the records of a WAL segment)');
      const filter = {
        ...(flags['from'] !== undefined ? { from: flags['from'] as number } : {}),
        ...(flags['to'] !== undefined ? { to: flags['to'] as number } : {}),
        ...(flags['term'] !== undefined ? { term: flags['term'] as number } : {}),
        ...(typeof flags['op'] === 'string' ? { op: flags['op'] } : {}),
        ...(typeof flags['key'] === 'string' ? { key: flags['key'] } : {}),
      };
      const r = readLog(p, filter);
      for (const w of r.warnings) warn(io, w);
      if (io.json) {
        io.stdout(r.rows.map((row) => JSON.stringify(row) + '\n').join(''));
        return 0;
      }
      const filtered = filter.term !== undefined || filter.op !== undefined || filter.key !== undefined;
      io.stdout(renderLog(r, filtered) + '\n');
      return 0;
    }
    if (kind === 'dir') {
      if (flags['header']) throw new ToolError('BAD_ARGS', p, '--header is for snapshot files');
      if (flags['records']) return emitRecords(io, scanRecords(p), p);
      const r = inspectDir(p, { top: flags['top'] as number });
      for (const w of r.warnings) if (w.includes('in use by pid')) warn(io, w);
      if (r.recovery.error) {
        // Show everything that could be read, then fail like any other damage: one line, exit 2.
        if (!io.json) io.stderr(`raftsnap inspect: recovery would fail: ${r.recovery.error.message}; \`raftsnap repair ${p}\` shows what a repair would keep and lose\n`);
        return emit(io, r, renderDir, EXIT_ERROR);
      }
      return emit(io, r, renderDir);
    }
    if (fileKind(p) === 'wal') {
      if (flags['header']) throw new ToolError('BAD_ARGS', p, '--header is for snapshot files; this is a WAL segment (`raftsnap inspect FILE` shows its header and records)');
      return emitRecords(io, scanSegmentRecords(p), null);
    }
    if (flags['records']) throw new ToolError('BAD_ARGS', p, '--records needs a data directory or a WAL segment file (a snapshot file holds no WAL records)');
    const r = inspectSnapshot(p, { top: flags['top'] as number, headerOnly: flags['header'] === true });
    return emit(io, r, renderSnapshot);
  },
};

/**
 * The records view, written a segment at a time (text, or the one JSON document of
 * collectRecords, the same bytes as JSON.stringify of it would give); a damaged segment: one line
 * on stderr and exit 1, after the view.
 */
function emitRecords(io: Io, scan: RecordsScan, dir: string | null): number {
  for (const w of scan.warnings) warn(io, w);
  const shown = scan.warnings.length;
  const t = new RecordTotals();
  let bad: SegmentRecords | null = null;
  if (io.json) io.stdout(`{\n  "kind": "records",\n  "path": ${JSON.stringify(scan.path)},\n  "segments": [`);
  for (const s of scan.segments()) {
    if (io.json) io.stdout(`${t.segments > 0 ? ',' : ''}\n    ${JSON.stringify(s, null, 2).replace(/\n/g, '\n    ')}`);
    else io.stdout(renderSegment(s) + '\n');
    t.add(s);
    if (!bad && (s.status === 'damaged' || s.status === 'unreadable')) bad = s;
  }
  for (const w of scan.warnings.slice(shown)) warn(io, w);
  if (io.json) {
    const rest = JSON.stringify({ records: t.records, commits: t.commits, entries: t.entries, bytes: t.bytes, damaged: t.damaged, warnings: scan.warnings }, null, 2);
    io.stdout(`${t.segments > 0 ? '\n  ' : ''}],\n${rest.slice(2)}\n`);
  } else {
    io.stdout(recordsSummary(t) + '\n');
    if (bad) io.stderr(`raftsnap inspect: ${bad.file}: ${bad.problem}${dir !== null ? `; \`raftsnap repair ${dir}\` shows what a repair would keep and lose` : ''}\n`);
  }
  return bad ? EXIT_DIFFERENT : 0;
}

export default inspect;

export function renderSnapshot(r: InspectSnapshotResult): string {
  const h = r.header;
  const out: string[] = [`Snapshot ${r.file}`];
  out.push(
    renderFields([
      ['index', h.index],
      ['term', h.term],
      ['configuration', h.config.length > 0 ? h.config.join(', ') : '(none)'],
      ['created', h.createdAt],
      ['written by', h.nodeId ?? '(unknown)'],
      ['format', `version ${h.formatVersion}, codec ${h.codec}`],
      ['payload', `${formatBytes(h.rawSize)} raw, ${formatBytes(h.compressedSize)} compressed (ratio ${h.ratio.toFixed(2)})`],
      ['file size', `${formatBytes(r.fileSize)} (${r.fileSize} bytes)`],
      ['header checksum', h.headerChecksum],
      ['payload checksum', h.payloadChecksum],
      ['keys', r.keys === null ? `${h.keyCount} (from the header)` : r.keys],
      ['client sessions', r.sessions === null ? (h.hasSessions ? 'yes' : 'none') : r.sessions],
    ]),
  );
  if (r.top.length > 0) {
    out.push(`Largest keys by encoded size (top ${r.top.length}):`);
    out.push(topTable(r.top));
  }
  return out.join('\n');
}

function topTable(top: TopKey[]): string {
  return renderTable(['key', 'bytes', 'key bytes', 'value bytes'], top.map((t) => [showJson(t.key), t.bytes, t.keyBytes, t.valueBytes]));
}

function range(min: number, max: number): string {
  return min === 0 && max === 0 ? '-' : `${min}..${max}`;
}

export function renderDir(r: InspectDirResult): string {
  const out: string[] = [`Data directory ${r.dir}`];
  const rec = r.recovery;
  const hs = r.hardState;
  out.push(
    renderFields([
      ['node', r.nodeId ?? '(not set)'],
      ['format', `version ${r.formatVersion}, created ${r.created}`],
      ['lock', r.lock.live ? `held by live pid ${r.lock.pid}` : r.lock.pid !== null ? `stale (pid ${r.lock.pid} is gone)` : 'free'],
      ['hard state', hs ? `term ${hs.term}, voted for ${hs.votedFor ?? '(nobody)'}, commit ${hs.commit}` : '(none)'],
      ['commit index', rec.commit ?? '-'],
      [
        'recovery loads',
        rec.error
          ? `FAILS: ${rec.error.message}`
          : `${rec.snapshot ? `${rec.snapshot} (index ${rec.snapshotIndex}, term ${rec.snapshotTerm})` : 'no snapshot'} + ${rec.entries} log entries${rec.entries > 0 ? ` (${rec.firstIndex}..${rec.lastIndex})` : ''}`,
      ],
      ['last index', rec.lastIndex ?? '-'],
      ['uncommitted entries', rec.uncommitted ?? '-'],
      [
        'recovered state',
        r.state
          ? `${plural(r.state.keys, 'key', 'keys')}, ${r.state.sessions === null ? 'no client sessions' : plural(r.state.sessions, 'client session', 'client sessions')}, at index ${r.state.index} (term ${r.state.term})`
          : '-',
      ],
      ['size', `${formatBytes(r.sizes.total)} (snapshots ${formatBytes(r.sizes.snapshots)}, WAL ${formatBytes(r.sizes.wal)}, leftovers ${formatBytes(r.sizes.leftovers)})`],
    ]),
  );
  out.push(`Snapshots (${r.snapshots.length}):`);
  if (r.snapshots.length > 0) {
    out.push(
      renderTable(
        ['file', 'index', 'term', 'keys', 'size', 'created', 'status'],
        r.snapshots.map((s) => [s.file, s.index, s.term, s.keys ?? '?', formatBytes(s.size), s.createdAt ?? '?', s.status]),
      ),
    );
  }
  out.push(`WAL segments (${r.wal.length}):`);
  if (r.wal.length > 0) {
    out.push(
      renderTable(
        ['file', 'seq', 'entries', 'index range', 'size', 'status'],
        r.wal.map((s) => [s.file, s.seq, s.entries, range(s.minIndex, s.maxIndex), formatBytes(s.size), s.status]),
      ),
    );
  }
  if (r.state && r.state.top.length > 0) {
    out.push(`Largest keys of the recovered state by encoded size (top ${r.state.top.length}):`);
    out.push(topTable(r.state.top));
  }
  if (r.leftovers.length > 0) {
    out.push(`Leftover files (${r.leftovers.length}):`);
    out.push(renderTable(['file', 'kind', 'size'], r.leftovers.map((l) => [l.file, l.kind, formatBytes(l.size)])));
  }
  if (r.warnings.length > 0) {
    out.push(`Warnings (${r.warnings.length}):`);
    for (const w of r.warnings) out.push(`  - ${w}`);
  } else out.push('No warnings.');
  return out.join('\n');
}

export function renderVerify(r: VerifyResult): string {
  const out: string[] = [];
  out.push(renderTable(['file', 'check', 'result', 'detail'], r.checks.map((c) => [c.file, c.check, c.ok ? 'ok' : 'FAILED', c.detail])));
  out.push(r.ok ? (r.checked === 1 ? 'The check passed.' : `All ${r.checked} checks passed.`) : `${r.failed} of ${r.checked} checks FAILED.`);
  return out.join('\n');
}

/** An entry's command for people: `write 26 = 59`, `cas 29: 11 -> 94`, `read 34`, `no-op`. */
export function commandText(c: EntryCommand, data: Json, max = 60): string {
  const k = c.key !== undefined ? showJson(c.key, 24) : '';
  let t: string;
  switch (c.op) {
    case 'noop':
      t = 'no-op';
      break;
    case 'read':
      t = `read ${k}`;
      break;
    case 'write':
      t = `write ${k} = ${showJson(c.value ?? null, max)}`;
      break;
    case 'cas':
      t = `cas ${k}: ${showJson(c.from ?? null, max)} -> ${showJson(c.to ?? null, max)}${c.createIfNotExists ? ' (create if missing)' : ''}`;
      break;
    default:
      t = `other ${showJson(data, max)}`;
  }
  if (c.session) t += ` (forwarded: ${c.session.origin} #${c.session.id})`;
  return t;
}

/** The value column of the log: a write's value, a cas's `from -> to`; other data as it is. */
function valueText(c: EntryCommand, data: Json): string {
  if (c.op === 'write') return showJson(c.value ?? null, 60);
  if (c.op === 'cas') return `${showJson(c.from ?? null, 28)} -> ${showJson(c.to ?? null, 28)}${c.createIfNotExists ? ' (create if missing)' : ''}`;
  if (c.op === 'other') return showJson(data, 60);
  return '';
}

export function renderLog(r: LogResult, filtered = false): string {
  const out: string[] = [];
  const sessions = r.rows.some((e) => e.session);
  const head = ['index', 'term', 'committed', 'op', 'key', 'value', ...(sessions ? ['forwarded by'] : [])];
  out.push(
    renderTable(
      head,
      r.rows.map((e) => [
        e.index,
        e.term,
        e.committed ? 'yes' : 'no',
        e.op,
        e.key !== undefined ? showJson(e.key, 24) : '',
        valueText(e, e.data),
        ...(sessions ? [e.session ? `${e.session.origin} #${e.session.id}` : ''] : []),
      ]),
    ),
  );
  const n = filtered ? `${plural(r.rows.length, 'entry', 'entries')} of ${r.total} match` : plural(r.rows.length, 'entry', 'entries');
  out.push(`${n}; commit index ${r.commit}.`);
  return out.join('\n');
}

const RECORD_NAMES: Record<RawRecord['type'], string> = {
  header: 'header',
  entry: 'entry',
  hardState: 'hard state',
  snapshot: 'snapshot',
  padding: 'padding',
  commit: 'commit',
  damage: 'DAMAGED',
};

function hex8(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

export function recordText(x: RawRecord): string {
  const unsealed = 'sealed' in x && !x.sealed ? '; unsealed' : '';
  switch (x.type) {
    case 'header':
      return `format version ${x.version}, seq ${x.seq}, first index ${x.firstIndex}`;
    case 'entry':
      return `index ${x.index}, term ${x.term}: ${commandText(x, x.data)}${unsealed}`;
    case 'hardState':
      return `term ${x.term}, voted for ${x.votedFor ?? '(nobody)'}, commit ${x.commit}${unsealed}`;
    case 'snapshot':
      return `a snapshot covers the log through index ${x.index}, term ${x.term} (${x.file})${unsealed}`;
    case 'padding':
      return `zero bytes up to offset ${x.offset + x.size}`;
    case 'commit':
      return `closes the write of bytes ${x.batchStart}..${x.offset} (CRC-32 ${hex8(x.batchCrc)})`;
    case 'damage':
      return `${x.reason}; ${plural(x.size, 'byte', 'bytes')} to the end, not read`;
  }
}

export function renderSegment(s: SegmentRecords): string {
  const out: string[] = [];
  const what = [
    s.seq !== null ? `seq ${s.seq}` : null,
    s.firstIndex !== null ? `first index ${s.firstIndex}` : null,
    s.version !== null ? `format version ${s.version}` : null,
    `${s.size} bytes`,
    s.entries > 0 ? `${plural(s.entries, 'entry', 'entries')} (${s.minIndex}..${s.maxIndex})` : 'no entries',
    s.status,
  ].filter((x) => x !== null);
  out.push(`Segment ${s.file}: ${what.join(', ')}`);
  if (s.records.length > 0) {
    out.push(renderTable(['offset', 'size', 'record', 'detail'], s.records.map((x) => [x.offset, x.size, x.type === 'damage' && x.torn ? 'TORN' : RECORD_NAMES[x.type], recordText(x)])));
  }
  if (s.status === 'unreadable') out.push(`  unreadable: ${s.problem}`);
  const first = s.records.find((x) => 'sealed' in x && !x.sealed);
  if (first) {
    const kept = s.status === 'ok' || s.status === 'torn tail' ? '; recovery keeps them and seals them' : '';
    out.push(`  records from offset ${first.offset} on are unsealed: no commit record after them was read${kept}`);
  }
  return out.join('\n');
}

function recordsSummary(t: RecordTotals): string {
  return `${plural(t.segments, 'segment', 'segments')}, ${plural(t.records, 'record', 'records')} (${plural(t.entries, 'entry', 'entries')}) and ${plural(t.commits, 'commit record', 'commit records')}, ${formatBytes(t.bytes)}.`;
}

/** The whole records view as text (a view collected in memory). */
export function renderRecords(r: RecordsResult): string {
  const t = new RecordTotals();
  for (const s of r.segments) t.add(s);
  return [...r.segments.map(renderSegment), recordsSummary(t)].join('\n');
}
