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
