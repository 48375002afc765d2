import { prose, plural } from '../text.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { formatBytes, renderFields, renderTable } from '../table.js';
import { repairDir, type RepairResult } from '../../tools/repair.js';
import { showJson } from '../../tools/state.js';

const repair: CommandSpec = {
  id: 'repair',
  summary: 'Get a damaged data directory to recover again, only when asked, saying what is lost.',
  description: prose(`Recovery refuses a directory whose synced WAL bytes changed (bit rot, a bad disk) rather than
guess, and falls back past a snapshot that fails its checksums. Without a flag, repair only
describes the damage and exits 1 when there is some. --cut-wal cuts the WAL at its first damaged
record: that segment is truncated there and the segments after it are set aside, each after keeping
a copy (<segment>.torn-<ms>). --quarantine-snapshot renames the snapshots that fail their checksums
to *.broken, so that recovery loads the next older one.

Before anything changes, the repair is rehearsed on an in-memory copy of the directory: the output
lists the entries it loses and how many of them may have been acknowledged to clients (those at or
below the last durable commit index), and whether the directory recovers afterwards. A repair that
would not make it recoverable is refused. --dry-run stops after the rehearsal (also on a live
directory); a directory held by a live node is refused. Nothing runs on its own: inspect, compact
and serve only point here.`),
  examples: ['repair ./raftsnap-data/n1', 'repair ./raftsnap-data/n1 --cut-wal --dry-run', 'repair ./raftsnap-data/n1 --cut-wal', 'repair ./raftsnap-data/n1 --quarantine-snapshot --json'],
  args: [{ name: 'dir', description: 'data directory (its node must be stopped)', required: true }],
  flags: [
    { name: 'cut-wal', kind: 'boolean', description: 'cut the WAL at its first damaged record (copies kept)' },
    { name: 'quarantine-snapshot', kind: 'boolean', description: 'rename snapshots that fail their checksums to *.broken' },
    { name: 'dry-run', kind: 'boolean', description: 'rehearse on an in-memory copy; change nothing' },
  ],
  run({ args, flags, io }) {
    const r = repairDir(args['dir']!, { cutWal: flags['cut-wal'] === true, quarantineSnapshot: flags['quarantine-snapshot'] === true, dryRun: flags['dry-run'] === true });
    for (const w of r.warnings) warn(io, w);
    const asked = r.asked.cutWal || r.asked.quarantineSnapshot;
    const damaged = r.walDamage !== null || r.damagedSnapshots.length > 0;
    return emit(io, r, renderRepair, !asked && damaged ? 1 : 0);
  },
};

export default repair;

function afterText(a: RepairResult['after']): string {
  if (!a.recovers) return `does NOT recover: ${a.error!.message}`;
  return `recovers: snapshot at ${a.snapshotIndex}, log to ${a.lastIndex}, commit ${a.commit}`;
}

export function renderRepair(r: RepairResult): string {
  const asked = r.asked.cutWal || r.asked.quarantineSnapshot;
  const out: string[] = [];
  if (!asked) out.push(`Repair check of ${r.dir}: nothing was changed.`);
  else if (r.changed) out.push(`Repaired ${r.dir}.`);
  else if (r.actions.length === 0) out.push(`Nothing to repair in ${r.dir} for ${[r.asked.cutWal ? '--cut-wal' : '', r.asked.quarantineSnapshot ? '--quarantine-snapshot' : ''].filter(Boolean).join(' ')}: nothing was changed.`);
  else out.push(`Dry run on ${r.dir} (rehearsed on an in-memory copy): nothing was changed.`);
  const fields: Array<[string, string | number]> = [
    ['recovery now', r.before.recovers ? 'recovers' : `FAILS: ${r.before.error!.message}`],
    ['WAL damage', r.walDamage ? `${r.walDamage.file} at offset ${r.walDamage.offset}: ${r.walDamage.reason}` : 'none that stops recovery (a torn tail is cut by recovery itself)'],
    ['damaged snapshots', r.damagedSnapshots.length > 0 ? r.damagedSnapshots.map((s) => s.file).join('\n') : 'none'],
  ];
  if (asked) {
    fields.push([r.changed ? 'done' : 'would do', r.actions.length > 0 ? r.actions.join('\n') : '(nothing)']);
    if (r.asked.cutWal && r.walDamage) {
      const l = r.lost;
      const unreadable = l.unreadableBytes > 0 ? `; ${formatBytes(l.unreadableBytes)} after the damaged record cannot be read (entries from index ${l.unreadableFrom} on)` : '';
      fields.push(['entries lost', `${plural(l.entries.length, 'readable entry', 'readable entries')}${unreadable}`]);
      const known =
        l.acknowledged > 0
          ? `${l.acknowledged} of the lost entries are at or below the last durable commit index read, ${l.lastDurableCommit}: clients may have been told they succeeded`
          : `none known (last durable commit index read: ${l.lastDurableCommit})`;
      const maybe = l.unreadableMayBeAcknowledged ? `; the unreadable entries may have been acknowledged too (a later hard state may be in the unreadable bytes)` : '';
      fields.push(['acknowledged', known + maybe]);
      if (l.acknowledged > 0 || l.unreadableMayBeAcknowledged) {
        fields.push([
          'caution',
          'this node may lack entries the cluster counts as committed: restart it only into its cluster, whose leader sends them again; never alone or to make up a majority without them (or rebuild it from a healthy node: raftsnap snapshot, then raftsnap restore)',
        ]);
      }
    }
    fields.push(['afterwards', afterText(r.after)]);
  } else if (r.walDamage || r.damagedSnapshots.length > 0) {
    const how: string[] = [];
    if (r.walDamage) how.push(`raftsnap repair ${r.dir} --cut-wal --dry-run`);
    if (r.damagedSnapshots.length > 0) how.push(`raftsnap repair ${r.dir} --quarantine-snapshot --dry-run`);
    fields.push(['to see a repair', how.join('\n')]);
  }
  out.push(renderFields(fields));
  if (asked && r.lost.entries.length > 0) {
    out.push(`Readable entries lost (${r.lost.entries.length}):`);
    out.push(renderTable(['index', 'term', 'acknowledged', 'command'], r.lost.entries.map((e) => [e.index, e.term, e.acknowledged ? 'yes' : 'no', e.data === null ? '(no-op)' : showJson(e.data, 60)])));
  }
  if (r.copies.length > 0) out.push(`Copies ${r.changed ? 'kept' : 'that would be kept'}: ${r.copies.join(', ')}`);
  return out.join('\n');
}
