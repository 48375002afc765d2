/**
 * Help text written as hard-wrapped paragraphs in the source, turned into one line per paragraph
 * so that oclif wraps it to the terminal's width (instead of re-wrapping every source line, which
 * leaves ragged short lines).
 */
export function prose(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .join('\n\n');
}

/** "1 entry", "2 entries". */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
