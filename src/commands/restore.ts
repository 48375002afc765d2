import { Args, Flags } from '@oclif/core';
import { prose } from '../cli/text.js';
import { RaftsnapCommand } from '../cli/base.js';
import { renderFields } from '../cli/table.js';
import { parseConfig, restoreSnapshot, type RestoreResult } from '../tools/restore.js';

export default class Restore extends RaftsnapCommand {
  static override summary = 'Build a fresh data directory from a snapshot file.';
  static override description = prose(`Verifies the snapshot file first (every checksum, full decode), then builds a complete data
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
with just that node.`);
  static override examples = [
    '<%= config.bin %> restore backup.snap --data-dir ./restored/n1',
    '<%= config.bin %> restore backup.snap --data-dir ./raftsnap-data/n2 --node-id n2 --force',
    '<%= config.bin %> restore backup.snap --data-dir ./restored/n3 --node-id n3 --json',
    '<%= config.bin %> restore backup.snap --data-dir ./single/n1 --node-id n1 --config n1',
  ];
  static override args = {
    file: Args.string({ description: 'snapshot file', required: true }),
  };
  static override flags = {
    'data-dir': Flags.string({ char: 'd', description: 'data directory to create', required: true }),
    'node-id': Flags.string({ description: 'node id to record in the new directory' }),
    force: Flags.boolean({ description: 'replace a non-empty target directory' }),
    config: Flags.string({ description: "the cluster's members to record instead of the snapshot's configuration, comma separated (must include the node id)" }),
  };

  async run(): Promise<RestoreResult> {
    const { args, flags } = await this.parse(Restore);
    const config = flags.config !== undefined ? parseConfig(flags.config) : undefined;
    const r = restoreSnapshot(args.file, flags['data-dir'], { nodeId: flags['node-id'], force: flags.force, ...(config ? { config } : {}) });
    for (const w of r.warnings) this.warnLine(w);
    return this.emit(r, renderRestore);
  }
}

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
