import { prose } from '../text.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { formatBytes, renderFields } from '../table.js';
import { exportSnapshot, type ExportResult } from '../../tools/export.js';

const snapshot: CommandSpec = {
  id: 'snapshot',
  summary: 'Write a standalone snapshot file of a data directory (read-only on the directory).',
  description: prose(`Builds the state at the newest committed index (or at --index N) by loading the newest
snapshot and replaying the committed log on top of it, exactly as a node would, and writes it as
a snapshot file (temporary name, fsync, rename). The directory is opened read-only and never
changed; a live node's directory is read anyway. The written file is read back and verified.
--index N must lie between the oldest snapshot that the log still connects to and the commit
index. Without --out the file is <term>-<index>.snap in the current directory; an existing file
is not overwritten without --force. SOURCE_DATE_EPOCH, when set, fixes the creation time.`),
  examples: [
    'snapshot ./raftsnap-data/n1',
    'snapshot ./raftsnap-data/n1 --out backup.snap --force',
    'snapshot ./raftsnap-data/n1 --index 250 --out at-250.snap --json',
  ],
  args: [{ name: 'dir', description: 'data directory', required: true }],
  flags: [
    { name: 'out', char: 'o', kind: 'string', description: 'file to write (default: <term>-<index>.snap in the current directory; never inside a data directory)', helpValue: 'FILE' },
    { name: 'index', kind: 'integer', description: 'state at this committed index instead of the commit index', min: 0 },
    { name: 'force', kind: 'boolean', description: 'overwrite an existing --out snapshot file (never a file that is not one)' },
  ],
  run({ args, flags, io }) {
    const r = exportSnapshot(args['dir']!, { out: flags['out'] as string | undefined, index: flags['index'] as number | undefined, force: flags['force'] === true });
    for (const w of r.warnings) warn(io, w);
    return emit(io, r, renderExport);
  },
};

export default snapshot;

export function renderExport(r: ExportResult): string {
  return [
    `Wrote ${r.file}`,
    renderFields([
      ['index', r.index],
      ['term', r.term],
      ['configuration', configText(r)],
      ['keys', r.keys],
      ['client sessions', r.sessions === null ? 'none' : `${r.sessions} ${r.sessions === 1 ? 'origin' : 'origins'}`],
      ['built from', `${r.base.snapshot ?? 'no snapshot (log from index 1)'} + ${r.base.replayed} log entries replayed`],
      ['created', r.createdAt],
      ['size', `${formatBytes(r.size)} (${formatBytes(r.rawSize)} raw, ${formatBytes(r.compressedSize)} compressed)`],
      ['verified', r.verified ? 'yes (read back: checksums and contents)' : 'no'],
    ]),
  ].join('\n');
}

const SOURCE_TEXT: Record<ExportResult['configSource'], string> = {
  'meta.json': 'the members recorded in meta.json',
  snapshot: "the base snapshot's configuration",
  'newer snapshot': "a newer snapshot's configuration (membership is fixed at the first init)",
  none: '',
};

function configText(r: ExportResult): string {
  if (r.config.length === 0) return '(none known: no members recorded in meta.json and no snapshot; restore will need --config)';
  return `${r.config.join(', ')} (${SOURCE_TEXT[r.configSource]})`;
}
