import { Args, Flags } from '@oclif/core';
import { prose } from '../cli/text.js';
import { RaftsnapCommand } from '../cli/base.js';
import { formatBytes, renderFields } from '../cli/table.js';
import { exportSnapshot, type ExportResult } from '../tools/export.js';

export default class Snapshot extends RaftsnapCommand {
  static override summary = 'Write a standalone snapshot file of a data directory (read-only on the directory).';
  static override description = prose(`Builds the state at the newest committed index (or at --index N) by loading the newest
snapshot and replaying the committed log on top of it, exactly as a node would, and writes it as
a snapshot file (temporary name, fsync, rename). The directory is opened read-only and never
changed; a live node's directory is read anyway. The written file is read back and verified.
--index N must lie between the oldest snapshot that the log still connects to and the commit
index. Without --out the file is <term>-<index>.snap in the current directory; an existing file
is not overwritten without --force. SOURCE_DATE_EPOCH, when set, fixes the creation time.`);
  static override examples = [
    '<%= config.bin %> snapshot ./raftsnap-data/n1',
    '<%= config.bin %> snapshot ./raftsnap-data/n1 --out backup.snap --force',
    '<%= config.bin %> snapshot ./raftsnap-data/n1 --index 250 --out at-250.snap --json',
  ];
  static override args = {
    dir: Args.string({ description: 'data directory', required: true }),
  };
  static override flags = {
    out: Flags.string({ char: 'o', description: 'file to write (default: <term>-<index>.snap in the current directory)' }),
    index: Flags.integer({ description: 'state at this committed index instead of the commit index', min: 0 }),
    force: Flags.boolean({ description: 'overwrite an existing --out file' }),
  };

  async run(): Promise<ExportResult> {
    const { args, flags } = await this.parse(Snapshot);
    const r = exportSnapshot(args.dir, { out: flags.out, index: flags.index, force: flags.force });
    for (const w of r.warnings) this.warnLine(w);
    return this.emit(r, renderExport);
  }
}

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
