import { prose } from '../text.js';
import { warn, type CommandSpec } from '../spec.js';
import { dumpState, type DumpFormat } from '../../tools/dump.js';
import { toToolError } from '../../tools/errors.js';

const dump: CommandSpec = {
  id: 'dump',
  summary: 'Print every key and value of a snapshot file or of the state a data directory recovers (read-only).',
  description: prose(`A snapshot file: its pairs in the file's order. A data directory: the state it would recover
(its newest good snapshot plus the committed log), read without changing anything and never
repairing, in the snapshot's order and then the keys the log created.

One line of JSON per pair by default (NDJSON: {"key": k, "value": v}, keys and values as JSON, so
the integer 1 and the string "1" stay apart); --json gives one JSON document (source, index, term,
config, pairs, count); --format table a column of keys and one of values for people. --key K keeps
one key (K is JSON: 7 is the integer, '"7"' the string; text that is not JSON is a string key),
--prefix P the string keys starting with P, --range A..B the integer keys from A to B (either end
may be left out).

The pairs are streamed a chunk of the snapshot at a time: memory stays the same for a million keys.
A problem found while streaming (a damaged file, a value over a limit) ends the output with one
line on stderr and exit 2 (also under --json once the document has begun; before that the error
is the {"error": ...} document of every command).`),
  examples: [
    'dump backup.snap',
    'dump ./raftsnap-data/n1 --range 0..9',
    'dump ./raftsnap-data/n1 --key 7 --json',
    'dump backup.snap --prefix user: --format table',
  ],
  args: [{ name: 'path', description: 'snapshot file or data directory', required: true }],
  flags: [
    { name: 'format', kind: 'string', description: 'ndjson (default), json or table', options: ['ndjson', 'json', 'table'], helpValue: 'FORMAT' },
    { name: 'key', kind: 'string', description: 'only this key (JSON text; other text is a string key)', helpValue: 'KEY', exclusive: ['prefix', 'range'] },
    { name: 'prefix', kind: 'string', description: 'only the string keys starting with this', helpValue: 'TEXT', exclusive: ['key', 'range'] },
    { name: 'range', kind: 'string', description: 'only the integer keys in A..B (0..99, 100.., ..-1)', helpValue: 'A..B', exclusive: ['key', 'prefix'] },
  ],
  run({ args, flags, io }) {
    const format: DumpFormat = io.json ? 'json' : ((flags['format'] as DumpFormat | undefined) ?? 'ndjson');
    const filter = {
      ...(typeof flags['key'] === 'string' ? { key: flags['key'] } : {}),
      ...(typeof flags['prefix'] === 'string' ? { prefix: flags['prefix'] } : {}),
      ...(typeof flags['range'] === 'string' ? { range: flags['range'] } : {}),
    };
    let started = false;
    const write = (text: string) => {
      started = true;
      io.stdout(text);
    };
    try {
      dumpState(args['path']!, { format, filter, write, warn: (w) => warn(io, w) });
    } catch (e) {
      if (!io.json || !started) throw e;
      // --json, and the document has begun: an {"error": ...} document cannot follow it on stdout.
      // The output ends where it was and the one line says why on stderr, as without --json.
      const t = toToolError(e);
      io.stdout('\n');
      io.stderr(`raftsnap dump: ${t.message}\n`);
      return t.exit;
    }
    return 0;
  },
};

export default dump;
