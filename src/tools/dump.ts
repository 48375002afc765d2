/**
 * `dump`: every key and value of a snapshot file, or of the state a data directory would recover
 * (read-only, never repairing), streamed a chunk at a time with an optional key filter. Nothing of
 * the state is kept: memory is one chunk of the snapshot plus, for a directory, the keys its
 * committed log touches (src/tools/state-stream.ts).
 */
import { textWidth } from '../cli/table.js';
import { canonicalJson } from '../kv/keys.js';
import type { Json } from '../raft/types.js';
import { ToolError } from './errors.js';
import { openStateStream, type StreamInfo } from './state-stream.js';
import { showJson } from './state.js';

export type DumpFormat = 'ndjson' | 'json' | 'table';

export interface KeyFilter {
  /** Exactly this key (as JSON text: `7` is the integer, `"7"` the string; other text is a string key). */
  key?: string;
  /** String keys starting with this. */
  prefix?: string;
  /** Integer keys in `a..b` (either end may be left out: `..10`, `5..`). */
  range?: string;
}

/** A predicate on keys from the filter flags; null when there is no filter. Throws BAD_ARGS. */
export function keyPredicate(f: KeyFilter): ((k: Json) => boolean) | null {
  const given = [f.key, f.prefix, f.range].filter((x) => x !== undefined).length;
  if (given > 1) throw new ToolError('BAD_ARGS', null, '--key, --prefix and --range cannot be combined; give one of them');
  if (f.key !== undefined) {
    let k: Json;
    try {
      k = JSON.parse(f.key) as Json;
    } catch {
      k = f.key;
    }
    if (typeof k === 'number' || typeof k === 'string') return (x) => x === k;
    const c = canonicalJson(k);
    return (x) => x !== null && typeof x === 'object' && canonicalJson(x) === c;
  }
  if (f.prefix !== undefined) {
    const p = f.prefix;
    return (x) => typeof x === 'string' && x.startsWith(p);
  }
  if (f.range !== undefined) {
    const m = /^\s*(-?\d+)?\s*\.\.\s*(-?\d+)?\s*$/.exec(f.range);
    if (!m || (m[1] === undefined && m[2] === undefined)) {
      throw new ToolError('BAD_ARGS', null, `--range: expected a..b with integers (e.g. 0..99, 100.., ..-1), got "${f.range}"`);
    }
    const lo = m[1] === undefined ? -Infinity : Number(m[1]);
    const hi = m[2] === undefined ? Infinity : Number(m[2]);
    if (lo > hi) throw new ToolError('BAD_ARGS', null, `--range: ${lo} is after ${hi}`);
    return (x) => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
  }
  return null;
}

export interface DumpSummary {
  info: StreamInfo;
  /** Pairs read, and pairs written (those the filter kept). */
  read: number;
  written: number;
}

const KEY_WIDTH = 24;

/**
 * Stream the pairs of `p` to `write` in `format`, keeping those the filter accepts. Warnings
 * (a torn tail recovery would cut, a live lock) go to `warn` before the first pair.
 */
export function dumpState(p: string, opts: { format: DumpFormat; filter?: KeyFilter; write: (s: string) => void; warn?: (s: string) => void }): DumpSummary {
  const keep = keyPredicate(opts.filter ?? {});
  const st = openStateStream(p);
  const { info } = st;
  for (const w of info.warnings) opts.warn?.(w);
  const out = opts.write;
  let read = 0;
  let written = 0;
  const fmt = opts.format;
  if (fmt === 'json') {
    const head = { source: info.source, kind: info.kind, index: info.index, term: info.term, config: info.config };
    out(JSON.stringify(head).slice(0, -1) + ',"pairs":[');
  } else if (fmt === 'table') {
    out(`${'KEY'.padEnd(KEY_WIDTH)}  VALUE\n`);
  }
  try {
    for (const { keys, values } of st.columns()) {
      let text = '';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const v = values[i]!;
        read++;
        if (keep !== null && !keep(k)) continue;
        if (fmt === 'ndjson') text += `{"key":${JSON.stringify(k)},"value":${JSON.stringify(v)}}\n`;
        else if (fmt === 'json') text += `${written > 0 ? ',' : ''}\n{"key":${JSON.stringify(k)},"value":${JSON.stringify(v)}}`;
        else {
          const shown = showJson(k, KEY_WIDTH);
          text += `${shown}${' '.repeat(Math.max(0, KEY_WIDTH - textWidth(shown)))}  ${showJson(v, 100)}\n`;
        }
        written++;
      }
      if (text !== '') out(text);
    }
  } finally {
    st.close();
  }
  if (fmt === 'json') out(`${written > 0 ? '\n' : ''}],"count":${written}}\n`);
  else if (fmt === 'table') out(`${written} ${written === 1 ? 'pair' : 'pairs'}${keep !== null ? ` of ${read}` : ''}.\n`);
  return { info, read, written };
}
