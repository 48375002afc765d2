import { prose } from '../text.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { formatBytes, formatDelta, renderFields, renderTable } from '../table.js';
import { compactDir, type CompactResult } from '../../tools/compact.js';

const compact: CommandSpec = {
  id: 'compact',
  summary: 'Fold the committed log of a stopped node into a snapshot and shrink the WAL.',
  description: prose(`Writes a snapshot of the state at the commit index (unless the newest snapshot is already
there), rewrites the WAL to hold only the hard state, the last --trailing committed entries and
the uncommitted ones, deletes the WAL segments this covers, keeps the --retain newest snapshots,
and removes leftover temporary files, repairing what recovery would repair (torn tail, broken
snapshot). The recovered state is checked to be identical afterwards. Sizes before and after are
reported. A directory held by a live node is refused. --dry-run changes nothing and reports what
would be done.`),
  examples: [
    'compact ./raftsnap-data/n1 --dry-run',
    'compact ./raftsnap-data/n1 --retain 2 --trailing 100',
    'compact ./raftsnap-data/n1 --json',
  ],
  args: [{ name: 'dir', description: 'data directory (its node must be stopped)', required: true }],
  flags: [
    { name: 'retain', kind: 'integer', description: 'snapshots to keep, newest first (at least 1)', default: 2, min: 1 },
    { name: 'trailing', kind: 'integer', description: 'committed log entries to keep before the snapshot index', default: 0, min: 0 },
    { name: 'dry-run', kind: 'boolean', description: 'change nothing; report what would be done (also on a live directory)' },
  ],
  run({ args, flags, io }) {
    const r = compactDir(args['dir']!, { retain: flags['retain'] as number, trailing: flags['trailing'] as number, dryRun: flags['dry-run'] === true });
    for (const w of r.warnings) warn(io, w);
    return emit(io, r, renderCompact);
  },
};

export default compact;

export function renderCompact(r: CompactResult): string {
  const would = r.dryRun ? 'would ' : '';
  const out: string[] = [
    r.dryRun
      ? `Dry run on ${r.dir}: nothing was changed.${r.live ? ` The directory is LIVE (in use by pid ${r.live.pid}): compact itself would refuse it until that node stops.` : ''}`
      : `Compacted ${r.dir}.`,
  ];
  out.push(
    renderFields([
      ['commit index', r.commit],
      [
        'new snapshot',
        r.newSnapshot
          ? `${r.newSnapshot.file} (index ${r.newSnapshot.index}, term ${r.newSnapshot.term}, ${r.newSnapshot.keys} keys, ${formatBytes(r.newSnapshot.size)})`
          : 'none needed (the newest snapshot is at the commit index)',
      ],
      ['WAL kept', `${r.wal.entries} entries${r.wal.entries > 0 ? ` (${r.wal.firstIndex}..${r.wal.lastIndex})` : ''} in ${r.wal.segment} (${formatBytes(r.wal.size)})`],
      [`${would}remove snapshots`, r.removed.snapshots.length > 0 ? r.removed.snapshots.join('\n') : '(none)'],
      [`${would}remove WAL segments`, r.removed.segments.length],
      [`${would}remove leftovers`, r.removed.leftovers.length > 0 ? r.removed.leftovers.join('\n') : '(none)'],
      ['state check', r.dryRun ? 'not run (dry run)' : r.verified ? 'recovered state unchanged' : 'FAILED'],
    ]),
  );
  if (r.repairs.length > 0) {
    out.push(`Repairs${r.dryRun ? ' that recovery would make' : ''}:`);
    for (const x of r.repairs) out.push(`  - ${x}`);
  }
  const row = (name: string, b: { count: number; bytes: number }, a: { count: number; bytes: number }) => [
    name,
    `${b.count} / ${formatBytes(b.bytes)}`,
    `${a.count} / ${formatBytes(a.bytes)}`,
    formatDelta(b.bytes, a.bytes),
  ];
  out.push(
    renderTable(
      ['', 'before (files / size)', r.dryRun ? 'after (estimated)' : 'after', 'change'],
      [
        row('snapshots', r.before.snapshots, r.after.snapshots),
        row('WAL', r.before.wal, r.after.wal),
        row('leftovers', r.before.leftovers, r.after.leftovers),
        ['total', formatBytes(r.before.total), formatBytes(r.after.total), formatDelta(r.before.total, r.after.total)],
      ],
    ),
  );
  return out.join('\n');
}
