import { plural, prose } from '../text.js';
import { EXIT_DIFFERENT, EXIT_ERROR } from '../run.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { formatBytes, renderFields, renderTable } from '../table.js';
import { ToolError } from '../../tools/errors.js';
import {
  inspectDir,
  inspectSnapshot,
  readLog,
  verifyPath,
  type InspectDirResult,
  type InspectSnapshotResult,
  type LogRow,
  type VerifyResult,
} from '../../tools/inspect.js';
import { pathKind } from '../../tools/load.js';
import { showJson } from '../../tools/state.js';

const inspect: CommandSpec = {
  id: 'inspect',
  summary: 'Show what a snapshot file or a data directory holds (read-only).',
  description: prose(`A snapshot file: its header (index, term, configuration, creation time, sizes and ratio,
checksum status), the key count and the largest keys by encoded size. --header reads only the
header (a few hundred bytes; the payload is not read or decompressed).

A data directory: its snapshots and WAL segments with their index ranges, the hard state, the
commit index, what recovery would load, and warnings (broken files, torn tail, leftovers, a live
lock: the directory is read anyway, nothing is changed).

--verify checks every checksum of the file or of every file in the directory and exits 1 when
any fails. --log lists the log entries of a directory (index, term, command), NDJSON with --json.
Errors (missing path, not a snapshot, damaged file) print one line and exit 2.`),
  examples: [
    'inspect backup.snap --top 5',
    'inspect backup.snap --header --json',
    'inspect ./raftsnap-data/n1',
    'inspect ./raftsnap-data/n1 --verify',
    'inspect ./raftsnap-data/n1 --log --from 100 --to 120',
    'inspect ./raftsnap-data/n1 --log --json | jq -c .data',
  ],
  args: [{ name: 'path', description: 'snapshot file or data directory', required: true }],
  flags: [
    { name: 'top', kind: 'integer', description: 'how many of the largest keys to list', default: 10, min: 0 },
    { name: 'header', kind: 'boolean', description: 'snapshot file: read the header only (payload not read)' },
    { name: 'verify', kind: 'boolean', description: 'check every checksum; exit 1 on any failure', exclusive: ['log', 'header'] },
    { name: 'log', kind: 'boolean', description: 'data directory: list log entries (NDJSON with --json)', exclusive: ['header'] },
    { name: 'from', kind: 'integer', description: 'with --log: first index to list', min: 0, dependsOn: ['log'] },
    { name: 'to', kind: 'integer', description: 'with --log: last index to list', min: 0, dependsOn: ['log'] },
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
      if (kind !== 'dir') throw new ToolError('BAD_ARGS', p, '--log needs a data directory (a snapshot file holds no log)');
      const r = readLog(p, { from: flags['from'] as number | undefined, to: flags['to'] as number | undefined });
      for (const w of r.warnings) warn(io, w);
      if (io.json) {
        io.stdout(r.rows.map((row) => JSON.stringify(row) + '\n').join(''));
        return 0;
      }
      io.stdout(renderLog(r.rows, r.commit) + '\n');
      return 0;
    }
    if (kind === 'dir') {
      if (flags['header']) throw new ToolError('BAD_ARGS', p, '--header is for snapshot files');
      const r = inspectDir(p);
      for (const w of r.warnings) if (w.includes('in use by pid')) warn(io, w);
      if (r.recovery.error) {
        // Show everything that could be read, then fail like any other damage: one line, exit 2.
        if (!io.json) io.stderr(`raftsnap inspect: recovery would fail: ${r.recovery.error.message}; \`raftsnap repair ${p}\` shows what a repair would keep and lose\n`);
        return emit(io, r, renderDir, EXIT_ERROR);
      }
      return emit(io, r, renderDir);
    }
    const r = inspectSnapshot(p, { top: flags['top'] as number, headerOnly: flags['header'] === true });
    return emit(io, r, renderSnapshot);
  },
};

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
    out.push(renderTable(['key', 'bytes', 'key bytes', 'value bytes'], r.top.map((t) => [showJson(t.key), t.bytes, t.keyBytes, t.valueBytes])));
  }
  return out.join('\n');
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
  out.push(r.ok ? `All ${r.checked} checks passed.` : `${r.failed} of ${r.checked} checks FAILED.`);
  return out.join('\n');
}

export function renderLog(rows: LogRow[], commit: number): string {
  const out: string[] = [];
  out.push(renderTable(['index', 'term', 'committed', 'command'], rows.map((e) => [e.index, e.term, e.committed ? 'yes' : 'no', e.data === null ? '(no-op)' : showJson(e.data, 80)])));
  out.push(`${plural(rows.length, 'entry', 'entries')}; commit index ${commit}.`);
  return out.join('\n');
}
