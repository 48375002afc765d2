import { prose } from '../text.js';
import { EXIT_DIFFERENT, EXIT_OK } from '../run.js';
import { emit, warn, type CommandSpec } from '../spec.js';
import { renderFields, renderTable } from '../table.js';
import { runDiff } from '../../tools/diff-run.js';
import type { DiffResult } from '../../tools/diff.js';
import { showJson } from '../../tools/state.js';

const diff: CommandSpec = {
  id: 'diff',
  summary: 'Compare two snapshots or data directories (exit 0 equal, 1 different, 2 error).',
  description: prose(`Each side is a snapshot file or a data directory; a directory stands for the state it would
recover (newest good snapshot plus the committed log), read without changing anything.
Prints header differences (index, term; for two files also creation time, codec and sizes, which
do not count as a difference), then how many keys were added (only in B), removed (only in A) and
changed. --keys lists them. Membership (a file's configuration, a directory's recorded members)
is reported on a line of its own when it differs, and does not count as a state difference: a
backup restored with --config onto other members holds the same state. Exit status as diff(1): 0
when the states are equal, 1 when they differ, 2 on error.`),
  examples: [
    'diff backup.snap ./raftsnap-data/n1',
    'diff ./raftsnap-data/n1 ./raftsnap-data/n2 --keys',
    'diff backup.snap at-250.snap --json',
  ],
  args: [
    { name: 'a', description: 'snapshot file or data directory', required: true },
    { name: 'b', description: 'snapshot file or data directory', required: true },
  ],
  flags: [{ name: 'keys', kind: 'boolean', description: 'list the keys added, removed and changed' }],
  async run({ args, flags, io }) {
    const { result, warnings } = await runDiff(args['a']!, args['b']!, { keys: flags['keys'] === true });
    for (const w of warnings) warn(io, w);
    return emit(io, result, renderDiff, result.equal ? EXIT_OK : EXIT_DIFFERENT);
  },
};

export default diff;

function describeSide(s: DiffResult['a']): string {
  return `${s.source} (${s.kind === 'dir' ? 'data directory' : 'snapshot'}, index ${s.index}, term ${s.term}, ${s.keys} keys)`;
}

export function renderDiff(r: DiffResult): string {
  const out: string[] = [];
  out.push(renderFields([
    ['A', describeSide(r.a)],
    ['B', describeSide(r.b)],
  ]));
  if (r.header.length > 0) {
    out.push('Header differences:');
    out.push(
      renderTable(
        ['field', 'A', 'B', 'counts'],
        r.header.map((h) => [h.field, showJson(h.a), showJson(h.b), h.state ? 'yes' : 'no (file only)']),
      ),
    );
  }
  const c = r.counts;
  out.push(`Keys: ${c.added} added, ${c.removed} removed, ${c.changed} changed, ${c.unchanged} unchanged`);
  const m = r.membership;
  if (!m.equal) {
    const show = (ids: string[]) => (ids.length > 0 ? ids.join(', ') : '(none recorded)');
    out.push(`Membership differs (not counted as a state difference): A ${show(m.a)}; B ${show(m.b)}`);
  }
  if (r.dedup && !r.dedup.equal) {
    out.push('Client session tables differ (forwarded requests already applied)');
  }
  if (r.keys) {
    const rows: string[][] = [];
    for (const k of r.keys.added) rows.push(['added', showJson(k.key), '', showJson(k.value)]);
    for (const k of r.keys.removed) rows.push(['removed', showJson(k.key), showJson(k.value), '']);
    for (const k of r.keys.changed) rows.push(['changed', showJson(k.key), showJson(k.a), showJson(k.b)]);
    if (rows.length > 0) out.push(renderTable(['change', 'key', 'A', 'B'], rows));
  }
  out.push(r.equal ? 'States are equal.' : 'States differ.');
  return out.join('\n');
}
