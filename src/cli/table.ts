/**
 * Tables for people, drawn here rather than with a table package (loading one costs more than
 * `inspect FILE --header` spends on its work). Box characters, no rule between rows; a cell may
 * hold several lines. Style (colour, width) is the run's: see `setStyle`. In a pipe there is no
 * colour and no width limit, so that golden files and scripts see stable text.
 */

export interface Style {
  /** ANSI bold header cells and red failure words (a terminal, without NO_COLOR or --no-color). */
  color: boolean;
  /** Fit tables into this many columns (a terminal's width); null: no limit. */
  columns: number | null;
}

let style: Style = { color: false, columns: null };

/** The style of this run (set once by the command runner from the terminal, NO_COLOR and --no-color). */
export function setStyle(s: Style): void {
  style = { ...s };
}

export function currentStyle(): Style {
  return style;
}

const ESC = String.fromCharCode(27);
const ANSI_RE = new RegExp(`${ESC}\\[[0-9;]*m`, 'g');

/** Columns a character takes in a terminal: 0 for combining marks, 2 for East Asian wide ones. */
function charWidth(cp: number): number {
  if (cp < 0x300) return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ? 0 : 1;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Width of a line of text in terminal columns (escape codes take none). */
export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s.replace(ANSI_RE, '')) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/** Break `line` into pieces at most `width` columns wide, at spaces where possible. */
function wrapLine(line: string, width: number): string[] {
  if (textWidth(line) <= width) return [line];
  const out: string[] = [];
  let cur = '';
  let curW = 0;
  const flush = () => {
    out.push(cur.trimEnd());
    cur = '';
    curW = 0;
  };
  for (const word of line.split(/(?<= )/)) {
    const ww = textWidth(word);
    if (curW + ww <= width) {
      cur += word;
      curW += ww;
      continue;
    }
    if (curW > 0) flush();
    // A word longer than the column: cut it.
    for (const ch of word) {
      const cw = charWidth(ch.codePointAt(0)!);
      if (curW + cw > width) flush();
      cur += ch;
      curW += cw;
    }
  }
  if (cur.length > 0) out.push(cur.trimEnd());
  return out;
}

function pad(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - textWidth(s)));
}

const RED_WORDS = /^(FAILED|FAILS|FAIL|DAMAGED|corrupt)\b/;

/**
 * Draw rows of cells (each a string, possibly of several lines). `head` is drawn as the first row
 * (bold with colour). Columns are as wide as their widest line; with `maxWidth`, the widest
 * columns are narrowed (their text wrapped) until the table fits.
 */
export function drawTable(head: string[] | null, rows: string[][], opts: { color?: boolean; maxWidth?: number | null } = {}): string {
  const color = opts.color ?? style.color;
  const maxWidth = opts.maxWidth === undefined ? style.columns : opts.maxWidth;
  const all = head ? [head, ...rows] : rows;
  const n = all.reduce((m, r) => Math.max(m, r.length), 0);
  const widths = new Array<number>(n).fill(0);
  for (const r of all) for (let i = 0; i < n; i++) for (const l of (r[i] ?? '').split('\n')) widths[i] = Math.max(widths[i]!, textWidth(l));
  if (maxWidth !== null && maxWidth > 0) {
    // Each column costs its width + 3 (padding and a border); one more border at the end.
    const budget = maxWidth - 1 - 3 * n;
    const MIN = 6;
    let total = widths.reduce((a, b) => a + b, 0);
    while (total > budget) {
      let wi = 0;
      for (let i = 1; i < n; i++) if (widths[i]! > widths[wi]!) wi = i;
      if (widths[wi]! <= MIN) break;
      widths[wi]!--;
      total--;
    }
  }
  const line = (l: string, m: string, r: string) => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const out: string[] = [line('┌', '┬', '┐')];
  const drawRow = (cells: string[], isHead: boolean) => {
    const wrapped = widths.map((w, i) => (cells[i] ?? '').split('\n').flatMap((l) => wrapLine(l, w)));
    const height = wrapped.reduce((m, c) => Math.max(m, c.length), 1);
    for (let k = 0; k < height; k++) {
      const parts = widths.map((w, i) => {
        const text = wrapped[i]![k] ?? '';
        let shown = pad(text, w);
        if (color && isHead && text) shown = `\u001b[1m${text}\u001b[22m` + ' '.repeat(w - textWidth(text));
        else if (color && RED_WORDS.test(text)) shown = `\u001b[31m${text}\u001b[39m` + ' '.repeat(w - textWidth(text));
        return ` ${shown} `;
      });
      out.push('│' + parts.join('│') + '│');
    }
  };
  if (head) drawRow(head, true);
  for (const r of rows) drawRow(r, false);
  out.push(line('└', '┴', '┘'));
  return out.join('\n');
}

/** A table with a header row. */
export function renderTable(head: string[], rows: Array<Array<string | number>>): string {
  return drawTable(head, rows.map((r) => r.map((c) => String(c))));
}

/** A two-column key/value table (headers of files, summaries). */
export function renderFields(fields: Array<[string, string | number]>): string {
  return drawTable(null, fields.map(([k, v]) => [k, String(v)]));
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
