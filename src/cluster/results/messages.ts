/**
 * messages.svg, Maelstrom's Lamport diagram of the first messages of a run: every node and client
 * a vertical line, every message an arrow from its send to its receipt. Time flows down by event
 * order (one step per send or receipt), so zero-latency client messages stay visible and causality
 * reads top to bottom. Client messages are blue, messages between nodes green, error replies red;
 * a dropped message is a dashed red arrow ending in a cross (hover says why), one still in flight
 * at the end a dotted grey one. Hover any arrow for the message.
 */
import type { JournalMessage } from '../journal.js';
import { esc } from './html.js';

const COL = 90;
const STEP = 5;
const TOP = 40;
const LEFT = 50;

function colOrder(ids: readonly string[], messages: readonly JournalMessage[]): string[] {
  const seen = new Set<string>(ids);
  const clients: string[] = [];
  for (const m of messages) {
    for (const x of [m.src, m.dest]) {
      if (!seen.has(x)) {
        seen.add(x);
        clients.push(x);
      }
    }
  }
  const num = (s: string): number => Number(s.replace(/^\D+/, '')) || 0;
  clients.sort((a, b) => num(a) - num(b) || (a < b ? -1 : 1));
  return [...ids, ...clients];
}

export function messagesSvg(ids: readonly string[], messages: readonly JournalMessage[], truncated: boolean): string {
  const cols = colOrder(ids, messages);
  const x = new Map(cols.map((c, i) => [c, LEFT + i * COL]));
  // Events in time order; a message's receipt never before its send.
  const events: Array<{ t: number; m: number; end: boolean }> = [];
  messages.forEach((m, i) => {
    events.push({ t: m.sent, m: i, end: false });
    const at = m.recv ?? m.droppedAt;
    if (at !== undefined) events.push({ t: at, m: i, end: true });
  });
  events.sort((a, b) => a.t - b.t || Number(a.end) - Number(b.end) || a.m - b.m);
  const y0 = new Array<number>(messages.length);
  const y1 = new Array<number>(messages.length);
  events.forEach((e, rank) => {
    const y = TOP + 20 + rank * STEP;
    if (e.end) y1[e.m] = y;
    else y0[e.m] = y;
  });
  const bottom = TOP + 40 + events.length * STEP;
  const width = LEFT * 2 + (cols.length - 1) * COL;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom + 20}" viewBox="0 0 ${width} ${bottom + 20}" font-family="system-ui, sans-serif" font-size="11">`,
    `<defs>${['client', 'server', 'error', 'dropped', 'flight']
      .map(
        (k) =>
          `<marker id="a-${k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="head-${k}"/></marker>`,
      )
      .join('')}</defs>`,
    `<style>
line.client { stroke: #2b7bd6; } .head-client { fill: #2b7bd6; }
line.server { stroke: #2e9a5b; } .head-server { fill: #2e9a5b; }
line.error { stroke: #d62b2b; } .head-error { fill: #d62b2b; }
line.dropped { stroke: #d62b2b; stroke-dasharray: 4 3; } .head-dropped { fill: #d62b2b; }
line.flight { stroke: #999; stroke-dasharray: 1 3; } .head-flight { fill: #999; }
line.msg { stroke-width: 1.2; } g.m:hover line.msg { stroke-width: 3; }
line.life { stroke: #bbb; } text.col { font-weight: 600; }
</style>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="16">${esc(`${messages.length} messages${truncated ? ' (the first ones of the run)' : ''}; time flows down by event order`)}</text>`,
  );
  for (const c of cols) {
    const cx = x.get(c)!;
    out.push(`<text class="col" x="${cx}" y="${TOP}" text-anchor="middle">${esc(c)}</text>`);
    out.push(`<line class="life" x1="${cx}" y1="${TOP + 6}" x2="${cx}" y2="${bottom}"/>`);
  }
  messages.forEach((m, i) => {
    const client = m.src.startsWith('c') || m.dest.startsWith('c');
    const kind = m.dropped ? 'dropped' : m.recv === undefined ? 'flight' : m.type === 'error' ? 'error' : client ? 'client' : 'server';
    const xa = x.get(m.src)!;
    const xb = x.get(m.dest)!;
    const ya = y0[i]!;
    const yb = y1[i] ?? Math.min(bottom, ya + 8 * STEP);
    const what = m.dropped
      ? `dropped (${m.dropped}) at ${m.droppedAt!.toFixed(1)} ms`
      : m.recv === undefined
        ? 'still in flight at the end'
        : `received at ${m.recv.toFixed(1)} ms`;
    const tip = `${m.src} -> ${m.dest} ${m.type}: sent at ${m.sent.toFixed(1)} ms, ${what}\n${m.body}`;
    out.push(`<g class="m ${kind}"><title>${esc(tip)}</title>`);
    // A message to oneself is drawn as a short hook.
    const xb2 = xa === xb ? xa + 20 : xb;
    out.push(`<line class="msg ${kind}" x1="${xa}" y1="${ya}" x2="${xb2}" y2="${yb}" marker-end="url(#a-${kind})"/>`);
    if (m.dropped) out.push(`<path d="M ${xb2 - 4} ${yb - 4} l 8 8 m 0 -8 l -8 8" stroke="#d62b2b" stroke-width="1.5"/>`);
    if (i < 300 || i % 20 === 0) {
      out.push(`<text x="${(xa + xb2) / 2}" y="${(ya + yb) / 2 - 2}" text-anchor="middle" font-size="9" fill="#555">${esc(m.type)}</text>`);
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n');
}
