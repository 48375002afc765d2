/** Small helpers shared by the result pages: escaping, colours, the page frame. */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON for a `<script type="application/json">` block (no `</script>` can end it early). */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** Outcome colours, as Maelstrom's timeline: ok blue, info orange, fail pink. */
export const OUTCOME_COLORS = { ok: '#6DB6FE', info: '#FFAA26', fail: '#FEB5DA' } as const;

/** Fault colours, as Jepsen's perf plots: partition yellow, kill red, pause blue. */
export const FAULT_COLORS = { partition: '#E9DCA0', kill: '#E9A4A0', pause: '#A0B1E9' } as const;

export function page(title: string, body: string, opts: { style?: string; script?: string } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(title)}</title>
<style>
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 20px 0 6px; }
a { color: #0b5cad; } code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
table.kv td, table.grid td, table.grid th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
table.grid th { background: #f4f4f4; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 600; }
.verdict.ok { background: #d7f5dd; color: #135d24; } .verdict.bad { background: #fde0e0; color: #8a1111; }
.verdict.unknown { background: #fff0cc; color: #7a5600; }
${opts.style ?? ''}
</style>
</head>
<body>
${body}
${opts.script ? `<script>\n${opts.script}\n</script>` : ''}
</body>
</html>
`;
}
