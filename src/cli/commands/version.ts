import { emit, type CommandSpec } from '../spec.js';
import { renderFields } from '../table.js';
import { readVersion } from '../version-info.js';

export interface VersionResult {
  name: string;
  version: string;
  node: string;
  platform: string;
  /** File formats this build writes, and the versions it reads. */
  formats: { snapshot: { writes: number; reads: number[] }; wal: { writes: number; reads: number[] }; dataDir: { writes: number; reads: number[] } };
}

const version: CommandSpec = {
  id: 'version',
  summary: 'Show the version of raftsnap, of Node.js, and the file formats this build reads and writes.',
  description: 'The same first line as --version; then the format versions (docs/FORMAT.md) of snapshot files, WAL segments and data directories this build writes and reads.',
  examples: ['version', 'version --json'],
  args: [],
  flags: [],
  async run({ io }) {
    const v = readVersion();
    const s = await import('../../storage/index.js');
    const { SNAPSHOT_READ_VERSIONS } = await import('../../storage/snapshot.js');
    const r: VersionResult = {
      name: v.name,
      version: v.version,
      node: v.node,
      platform: `${v.platform}-${v.arch}`,
      formats: {
        snapshot: { writes: s.SNAPSHOT_FORMAT_VERSION, reads: [...SNAPSHOT_READ_VERSIONS] },
        wal: { writes: s.WAL_FORMAT_VERSION, reads: [...s.WAL_READ_VERSIONS] },
        dataDir: { writes: s.DATA_DIR_FORMAT_VERSION, reads: [s.DATA_DIR_FORMAT_VERSION] },
      },
    };
    return emit(io, r, (x) =>
      [
        v.line,
        renderFields([
          ['snapshot files', `format ${x.formats.snapshot.writes} (reads ${x.formats.snapshot.reads.join(', ')})`],
          ['WAL segments', `format ${x.formats.wal.writes} (reads ${x.formats.wal.reads.join(', ')})`],
          ['data directories', `format ${x.formats.dataDir.writes} (reads ${x.formats.dataDir.reads.join(', ')})`],
        ]),
      ].join('\n'),
    );
  },
};

export default version;
