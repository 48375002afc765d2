import { prose } from '../text.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { renderFields } from '../table.js';
import { parseConfig, restoreSnapshot, type RestoreResult } from '../../tools/restore.js';

const restore: CommandSpec = {
  id: 'restore',
  summary: 'Build a fresh data directory from a snapshot file.',
  description: prose(`Verifies the snapshot file first (every checksum, full decode), then builds a complete data
directory (meta.json, the snapshot, a WAL whose hard state has the snapshot's term and commits its
index) in a temporary directory next to the target, checks that it recovers exactly the
snapshot's state, and renames it into place. A non-empty target is refused without --force; with
--force the old directory is moved aside and deleted only after the new one is in place. A target
held by a live node is always refused. The node id is --node-id, else the target's old one, else
the one recorded in the snapshot.

The new directory records the cluster's members: the snapshot's configuration, or --config
n1[,n2...] instead (as etcdutl's --initial-cluster does; the snapshot is then rewritten with it).
The node takes its members from there: its init must list exactly them, or it is refused (error
22, exit 1). So a backup of a 3-node cluster is restored onto three nodes (one restore per node,
each with its --node-id, which must be a member); to bring it up on a single node use --config
with just that node.`),
  examples: [
    'restore backup.snap --data-dir ./restored/n1',
    'restore backup.snap --data-dir ./raftsnap-data/n2 --node-id n2 --force',
    'restore backup.snap --data-dir ./restored/n3 --node-id n3 --json',
    'restore backup.snap --data-dir ./single/n1 --node-id n1 --config n1',
  ],
  args: [{ name: 'file', description: 'snapshot file', required: true }],
  flags: [
    { name: 'data-dir', char: 'd', kind: 'string', description: 'the data directory to create', required: true, helpValue: 'DIR' },
    { name: 'node-id', kind: 'string', description: 'node id to record in the new directory', helpValue: 'ID' },
    { name: 'force', kind: 'boolean', description: 'replace a raftsnap data directory (never anything else)' },
    { name: 'config', kind: 'string', description: "the cluster's members to record instead of the snapshot's configuration, comma separated (must include the node id)", helpValue: 'IDS' },
  ],
  run({ args, flags, io }) {
    const dataDir = flags['data-dir'] as string;
    const config = flags['config'] !== undefined ? parseConfig(flags['config'] as string) : undefined;
    const r = restoreSnapshot(args['file']!, dataDir, { nodeId: flags['node-id'] as string | undefined, force: flags['force'] === true, ...(config ? { config } : {}) });
    for (const w of r.warnings) warn(io, w);
    return emit(io, r, renderRestore);
  },
};

export default restore;

export function renderRestore(r: RestoreResult): string {
  return [
    `Restored ${r.file} into ${r.dataDir}${r.replaced ? ' (previous contents replaced)' : ''}`,
    renderFields([
      ['node', r.nodeId ?? '(not set; recorded at first start)'],
      ['index', r.index],
      ['term', r.term],
      ['members', r.config.length > 0 ? `${r.config.join(', ')} (init must list exactly these)` : '(none; recorded at first start)'],
      ['keys', r.keys],
      ['hard state', `term ${r.hardState.term}, voted for (nobody), commit ${r.hardState.commit}`],
      ['created', r.createdAt],
      ['verified', r.verified ? 'yes (the new directory recovers the snapshot state)' : 'no'],
    ]),
  ].join('\n');
}
