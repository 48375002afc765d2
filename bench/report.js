// Helpers shared by the benchmarks: medians, number formatting, and writing a result block into
// docs/BENCHMARKS.md between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers.
import fs from 'node:fs';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** Replace the `name` block of `file` with `text` (appending the block when the file has none). */
export function writeBlock(file, name, text) {
  const marker = `<!-- bench:${name} -->`;
  const endMarker = `<!-- /bench:${name} -->`;
  let doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const block = `${marker}\n${text}${endMarker}\n`;
  const start = doc.indexOf(marker);
  const end = doc.indexOf(endMarker);
  doc = start >= 0 && end > start ? doc.slice(0, start) + block + doc.slice(end + endMarker.length + 1) : doc + '\n' + block;
  fs.writeFileSync(file, doc);
}
