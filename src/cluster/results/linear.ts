/**
 * linear-<key>.html: the history of a key that is not linearizable, in the style of Porcupine's
 * visualizer. Each operation is a bar on its client's row from invocation to completion
 * (indeterminate ones run to the end, striped). The longest linearizable prefix the checker found
 * is drawn as its linearization: each of its operations numbered in order, with a point where it
 * takes effect, the points joined by a line. The operation that cannot be placed next is outlined
 * in red, and the register's state before it is printed.
 */
import type { Operation } from '../../check/history.js';
import { describeOp, type Violation } from '../../check/linearizability.js';
import { esc, OUTCOME_COLORS, page, scriptJson } from './html.js';

/** The file name for a key: `linear-3.html`, `linear-x_y.html`. */
export function linearFileName(key: unknown): string {
  const k = typeof key === 'string' ? key : JSON.stringify(key);
  return `linear-${k.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60)}.html`;
}

const show = (v: unknown): string => (v === undefined ? 'absent (never written)' : JSON.stringify(v));

export function linearHtml(keyOps: readonly Operation[], v: Violation): string {
  const ops = [...keyOps].sort((a, b) => a.call - b.call);
  const end = Math.max(1, ...ops.map((o) => (o.ret === Infinity ? o.call : o.ret)));
  const start = Math.min(...ops.map((o) => o.call));
  const procs = [...new Set(ops.map((o) => String(o.process)))].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1));
  const row = new Map(procs.map((p, i) => [p, i]));
  const orderOf = new Map(v.order.map((id, i) => [id, i + 1]));
  // Linearization points: the earliest each can take effect after the one before it.
  const points: Array<[number, number]> = [];
  let at = -Infinity;
  const byId = new Map(ops.map((o) => [o.id, o]));
  for (const id of v.order) {
    const o = byId.get(id);
    if (!o) continue;
    at = Math.max(at, o.call);
    points.push([id, at]);
  }
  const stuck = v.stuck?.id;
  const data = {
    procs,
    start,
    end: end + (end - start) * 0.04,
    // [id, row, call, ret (null: indeterminate), outcome, order (0: not in the prefix), tooltip]
    ops: ops.map((o) => [
      o.id,
      row.get(String(o.process))!,
      o.call,
      o.ret === Infinity ? null : o.ret,
      o.outcome,
      orderOf.get(o.id) ?? 0,
      describeOp(o),
    ]),
    points,
    stuck: stuck ?? null,
    // Where the violation is: the end of the stuck operation or of the last one of the prefix.
    focus: Math.max(
      ...[v.stuck, ...v.order.map((id) => byId.get(id))].map((o) => (o ? (o.ret === Infinity ? o.call : o.ret) : start)),
    ),
  };
  const recent = v.order.slice(-12).map((id) => byId.get(id)).filter((o): o is Operation => o !== undefined);
  const body = `<h1>key ${esc(JSON.stringify(v.key))}: not linearizable</h1>
<p>${ops.length} operations of this key on ${procs.length} processes. The checker's longest linearizable prefix has
<b>${v.order.length}</b> operations (numbered on the bars, their linearization points joined by the green line);
it leaves the register <b class="mono">${esc(show(v.stateAfterPrefix))}</b>.</p>
${
  v.stuck
    ? `<p class="stuckline">Then <b class="mono">${esc(describeOp(v.stuck))}</b> (outlined in red) must take effect, and cannot:
the state before it is <b class="mono">${esc(show(v.stateAfterPrefix))}</b>.</p>`
    : '<p>No single operation could be named as the one that cannot be placed.</p>'
}
<p>zoom <button id="zoomOut">-</button> <button id="zoomIn">+</button>. Hover a bar for the operation.
<span class="key"><i style="background:${OUTCOME_COLORS.ok}"></i>ok <i style="background:${OUTCOME_COLORS.fail}"></i>failed cas (an observation)
<i class="maybe"></i>indeterminate</span></p>
<div id="wrap"><div id="lin"></div></div>
<h2>The end of the prefix, in order</h2>
<ol start="${v.order.length - recent.length + 1}" class="mono">${recent.map((o) => `<li>${esc(describeOp(o))}</li>`).join('')}</ol>
<h2>The checker's explanation</h2>
<pre class="mono">${esc(v.message)}</pre>
<script type="application/json" id="data">${scriptJson(data)}</script>`;
  const style = `
.key i { display: inline-block; width: 12px; height: 12px; margin: 0 3px 0 10px; vertical-align: -2px; border: 1px solid #0002; }
i.maybe, .op.maybe { background: repeating-linear-gradient(45deg, ${OUTCOME_COLORS.info}, ${OUTCOME_COLORS.info} 4px, #ffe0b0 4px, #ffe0b0 8px); }
#wrap { overflow-x: auto; border: 1px solid #ddd; }
#lin { position: relative; margin-left: 50px; }
.row { position: absolute; left: -50px; font-size: 11px; color: #555; }
.op { position: absolute; height: 18px; box-sizing: border-box; border: 1px solid #0004; border-radius: 3px; font-size: 10px; line-height: 16px; overflow: hidden; white-space: nowrap; padding-left: 2px; }
.op.ok { background: ${OUTCOME_COLORS.ok}; } .op.absent, .op.mismatch { background: ${OUTCOME_COLORS.fail}; }
.op.linearized { border: 2px solid #1d7a36; }
.op.stuck { border: 3px solid #d00; box-shadow: 0 0 0 2px #fcc; z-index: 2; }
.op:hover { outline: 2px solid #000; z-index: 3; }
.stuckline { background: #fde0e0; padding: 4px 8px; border-radius: 4px; }
svg.points { position: absolute; left: 0; top: 0; pointer-events: none; }
`;
  const script = `
const D = JSON.parse(document.getElementById('data').textContent);
const lin = document.getElementById('lin');
const RH = 26;
// Open on the violation: the prefix and the stuck operation, and as much again after them.
const focusEnd = Math.min(D.end, D.start + 2 * Math.max(1, D.focus - D.start));
let scale = Math.max(0.001, (Math.max(800, window.innerWidth - 120)) / (focusEnd - D.start));
const X = (t) => (t - D.start) * scale;
function draw() {
  const f = document.createDocumentFragment();
  const width = Math.ceil(X(D.end)) + 20;
  const height = D.procs.length * RH + 10;
  lin.style.width = width + 'px';
  lin.style.height = height + 'px';
  D.procs.forEach((p, i) => {
    const d = document.createElement('div');
    d.className = 'row';
    d.style.top = (i * RH + 3) + 'px';
    d.textContent = 'p' + p;
    f.appendChild(d);
  });
  const rowOf = new Map();
  for (const [id, r, call, ret, outcome, order, tip] of D.ops) {
    rowOf.set(id, r);
    const d = document.createElement('div');
    d.className = 'op ' + outcome + (order ? ' linearized' : '') + (id === D.stuck ? ' stuck' : '');
    d.dataset.id = id;
    d.style.left = X(call) + 'px';
    d.style.top = (r * RH) + 'px';
    d.style.width = Math.max(4, X(ret === null ? D.end : ret) - X(call)) + 'px';
    d.title = tip + (order ? '\\nlinearized #' + order : '') + (id === D.stuck ? '\\ncannot be placed next' : '');
    d.textContent = order ? '#' + order : (id === D.stuck ? '!' : '');
    f.appendChild(d);
  }
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'points');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  const pts = D.points.map(([id, t]) => [X(t), rowOf.get(id) * RH + 9]);
  if (pts.length > 1) {
    const pl = document.createElementNS(ns, 'polyline');
    pl.setAttribute('points', pts.map((p) => p.join(',')).join(' '));
    pl.setAttribute('fill', 'none');
    pl.setAttribute('stroke', '#1d7a36');
    pl.setAttribute('stroke-width', '1.2');
    svg.appendChild(pl);
  }
  for (const [x, y] of pts) {
    const c = document.createElementNS(ns, 'circle');
    c.setAttribute('cx', x); c.setAttribute('cy', y); c.setAttribute('r', 3);
    c.setAttribute('fill', '#1d7a36');
    c.setAttribute('class', 'point');
    svg.appendChild(c);
  }
  f.appendChild(svg);
  lin.replaceChildren(f);
  const s = lin.querySelector('.op.stuck');
  if (s) s.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}
document.getElementById('zoomIn').onclick = () => { scale *= 2; draw(); };
document.getElementById('zoomOut').onclick = () => { scale /= 2; draw(); };
draw();
`;
  return page(`key ${JSON.stringify(v.key)}: not linearizable`, body, { style, script });
}
