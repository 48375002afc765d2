import Table from 'cli-table3';

/** Box characters without the rule between rows: compact tables that still read as tables. */
const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/**
 * A table for people. Colours only on a terminal: cli-table3 colours the head and border by
 * default, which would put escape codes into pipes and golden files.
 */
export function renderTable(head: string[], rows: Array<Array<string | number>>, tty = process.stdout.isTTY === true): string {
  const table = new Table({
    head,
    chars: COMPACT,
    style: tty ? undefined : { head: [], border: [] },
  });
  for (const r of rows) table.push(r.map((c) => String(c)));
  return table.toString();
}

/** A two-column key/value table (headers of files, summaries). */
export function renderFields(fields: Array<[string, string | number]>, tty = process.stdout.isTTY === true): string {
  const table = new Table({ chars: COMPACT, style: tty ? undefined : { head: [], border: [] } });
  for (const [k, v] of fields) table.push({ [k]: String(v) });
  return table.toString();
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** A signed size change: "-3.1 KiB (-42%)". */
export function formatDelta(before: number, after: number): string {
  const d = after - before;
  const sign = d < 0 ? '-' : d > 0 ? '+' : '';
  const pct = before > 0 ? ` (${sign}${Math.round((Math.abs(d) / before) * 100)}%)` : '';
  return `${sign}${formatBytes(Math.abs(d))}${pct}`;
}
