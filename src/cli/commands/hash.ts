import { prose } from '../text.js';
import { EXIT_DIFFERENT, EXIT_OK } from '../run.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { renderTable } from '../table.js';
import { hashPaths, type HashResult } from '../../tools/hash.js';

const hash: CommandSpec = {
  id: 'hash',
  summary: 'A hash of each state, with its index and term; do all nodes at the same index agree? (exit 0 yes, 1 no, 2 error)',
  description: prose(`Each path is a snapshot file, a data directory (the state it would recover: its newest good
snapshot plus the committed log, read without changing anything), or a data root holding data
directories (n1, n2, ... as raftsnap cluster leaves them), which stands for all of them.

The hash is of the key/value pairs, whatever their order, chunking, compression or file: a
snapshot and the directory that recovers the same state have the same hash (docs/FORMAT.md,
"State hash"); the client session table is hashed on its own. One row per state, then the
verdict: states at the same index must have the same hashes; states at another index are not
compared with them. Exit 0 when every index agrees, 1 when some do not (as diff), 2 on error.
The states are streamed: memory stays the same for a million keys.`),
  examples: [
    'hash ./raftsnap-data',
    'hash ./raftsnap-data/n1 ./raftsnap-data/n2 --json',
    'hash backup.snap ./raftsnap-data/n1',
  ],
  args: [{ name: 'paths', description: 'snapshot files, data directories or a data root (one or more)', required: true, variadic: true }],
  flags: [],
  run({ args, rest, io }) {
    const paths = [args['paths']!, ...(rest ?? [])];
    const r = hashPaths(paths);
    for (const w of r.warnings) warn(io, w);
    return emit(io, r, renderHash, r.agree ? EXIT_OK : EXIT_DIFFERENT);
  },
};

export default hash;

export function renderHash(r: HashResult): string {
  const out: string[] = [];
  out.push(
    renderTable(
      ['state', 'node', 'index', 'term', 'keys', 'hash', 'sessions'],
      r.rows.map((x) => [x.source, x.nodeId ?? '-', x.index, x.term, x.keys, x.hash.slice(0, 16), x.sessions === null ? '-' : x.sessions.slice(0, 8)]),
    ),
  );
  for (const g of r.groups) {
    const n = g.sources.length;
    if (n === 1) out.push(`Index ${g.index}: ${g.sources[0]} alone (nothing to compare it with).`);
    else if (g.agree) out.push(`Index ${g.index}: all ${n} agree.`);
    else out.push(`Index ${g.index}: ${n} states DISAGREE (${g.distinct} different hashes).`);
  }
  out.push(r.agree ? 'Verdict: the states agree.' : 'Verdict: the states DISAGREE.');
  return out.join('\n');
}
