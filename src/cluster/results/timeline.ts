/**
 * timeline.html, as Maelstrom's: one column per client process, each operation a bar from its
 * invocation to its completion, coloured by outcome (ok blue, info orange, fail pink), the op and
 * its reply on hover; fault windows shaded across the columns. Time runs down, linearly, with a
 * zoom. The bars are built in the browser from the embedded JSON (one `div.op` each), so 10,000
 * operations make a page of a few hundred KiB that draws in well under a second.
 */
import type { FaultWindow } from '../summary.js';
import { esc, FAULT_COLORS, OUTCOME_COLORS, page, scriptJson } from './html.js';
import { describe, type PictureOp } from './ops.js';

/** Operations drawn at most (Maelstrom stops at 10,000); the rest are counted in the header. */
export const TIMELINE_MAX_OPS = 20_000;

export function timelineHtml(ops: readonly PictureOp[], faults: readonly FaultWindow[], title: string): string {
  const shown = ops.slice(0, TIMELINE_MAX_OPS);
  const procs = [...new Set(shown.map((o) => String(o.process)))].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1));
  const col = new Map(procs.map((p, i) => [p, i]));
  const node = new Map<string, string>();
  for (const o of shown) if (o.node && !node.has(String(o.process))) node.set(String(o.process), o.node);
  const end = Math.max(1, ...shown.map((o) => o.end));
  const data = {
    procs: procs.map((p) => [p, node.get(p) ?? '']),
    // [column, start, end, outcome 0 ok / 1 info / 2 fail, tooltip]
    ops: shown.map((o) => [col.get(String(o.process))!, Math.round(o.start * 10) / 10, Math.round(o.end * 10) / 10, o.type === 'ok' ? 0 : o.type === 'info' ? 1 : 2, describe(o)]),
    faults: faults.map((f) => [f.kind, f.start, f.end, f.detail]),
    end,
  };
  const more = ops.length > shown.length ? ` (the first ${shown.length} of ${ops.length} drawn)` : '';
  const body = `<h1>${esc(title)}</h1>
<p>${ops.length} operations${more}, ${procs.length} processes, ${(end / 1000).toFixed(1)} s.
<span class="key"><i style="background:${OUTCOME_COLORS.ok}"></i>ok <i style="background:${OUTCOME_COLORS.info}"></i>info (indeterminate)
<i style="background:${OUTCOME_COLORS.fail}"></i>fail
<i style="background:${FAULT_COLORS.partition}"></i>partition <i style="background:${FAULT_COLORS.kill}"></i>kill
<i style="background:${FAULT_COLORS.pause}"></i>pause</span>
zoom <button id="zoomOut">-</button> <button id="zoomIn">+</button> <span id="scale"></span>. Hover a bar for the operation and its reply.</p>
<div id="head"></div>
<div id="tl"></div>
<script type="application/json" id="data">${scriptJson(data)}</script>`;
  const style = `
.key i { display: inline-block; width: 12px; height: 12px; margin: 0 3px 0 10px; vertical-align: -2px; border: 1px solid #0002; }
#head { position: sticky; top: 0; z-index: 2; background: #fff; height: 34px; margin-left: 60px; white-space: nowrap; }
#head div { position: absolute; width: 44px; font-size: 10px; text-align: center; top: 0; line-height: 16px; }
#tl { position: relative; margin-left: 60px; }
#tl .op { position: absolute; width: 40px; min-height: 2px; box-sizing: border-box; border: 1px solid #0003; border-radius: 2px; }
#tl .o0 { background: ${OUTCOME_COLORS.ok}; } #tl .o1 { background: ${OUTCOME_COLORS.info}; } #tl .o2 { background: ${OUTCOME_COLORS.fail}; }
#tl .op:hover { outline: 2px solid #000; z-index: 1; }
#tl .fault { position: absolute; left: 0; right: 0; opacity: 0.4; }
#tl .tick { position: absolute; left: -60px; width: 56px; text-align: right; font-size: 10px; color: #666; border-top: 1px solid #ccc; }
${Object.entries(FAULT_COLORS)
  .map(([k, c]) => `#tl .f-${k} { background: ${c}; }`)
  .join(' ')}
`;
  const script = `
const D = JSON.parse(document.getElementById('data').textContent);
const tl = document.getElementById('tl');
const head = document.getElementById('head');
const W = 44;
let scale = Math.min(0.5, Math.max(0.02, 20000 / D.end));
function draw() {
  document.getElementById('scale').textContent = (scale * 1000).toFixed(0) + ' px/s';
  const f = document.createDocumentFragment();
  tl.style.height = Math.ceil(D.end * scale + 20) + 'px';
  tl.style.width = (D.procs.length * W) + 'px';
  for (const [kind, s, e, detail] of D.faults) {
    const d = document.createElement('div');
    d.className = 'fault f-' + kind;
    d.style.top = (s * scale) + 'px';
    d.style.height = Math.max(1, (e - s) * scale) + 'px';
    d.title = kind + ': ' + detail;
    f.appendChild(d);
  }
  const step = [100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000].find((x) => x * scale >= 60) || 60000;
  for (let t = 0; t <= D.end; t += step) {
    const d = document.createElement('div');
    d.className = 'tick';
    d.style.top = (t * scale) + 'px';
    d.textContent = (t / 1000) + ' s';
    f.appendChild(d);
  }
  for (const [c, s, e, o, tip] of D.ops) {
    const d = document.createElement('div');
    d.className = 'op o' + o;
    d.style.left = (c * W + 2) + 'px';
    d.style.top = (s * scale) + 'px';
    d.style.height = Math.max(2, (e - s) * scale) + 'px';
    d.title = tip;
    f.appendChild(d);
  }
  tl.replaceChildren(f);
}
D.procs.forEach(([p, n], i) => {
  const d = document.createElement('div');
  d.style.left = (i * W) + 'px';
  d.textContent = 'p' + p;
  d.appendChild(document.createElement('br'));
  d.appendChild(document.createTextNode(n));
  head.appendChild(d);
});
document.getElementById('zoomIn').onclick = () => { scale *= 2; draw(); };
document.getElementById('zoomOut').onclick = () => { scale /= 2; draw(); };
draw();
`;
  return page(title, body, { style, script });
}
