/** The history's operations as the pictures need them: one record per invocation and its end. */
import type { HistoryEvent, OpFn } from '../../check/history.js';

export interface PictureOp {
  process: number | string;
  f: OpFn;
  key: unknown;
  /** The invocation's value (write value, [from, to], null for a read). */
  value: unknown;
  type: 'ok' | 'fail' | 'info';
  /** ms since the run started. */
  start: number;
  /** Completion time; for an invocation that never completed, the end of the history. */
  end: number;
  node?: string;
  /** The completion's value (the value read), and error code and text. */
  result?: unknown;
  code?: number;
  error?: string;
}

export function pairOps(history: readonly HistoryEvent[]): PictureOp[] {
  const open = new Map<string, PictureOp>();
  const out: PictureOp[] = [];
  let last = 0;
  for (const e of history) {
    last = Math.max(last, e.time);
    const k = String(e.process);
    if (e.type === 'invoke') {
      const op: PictureOp = { process: e.process, f: e.f, key: e.key, value: e.value ?? null, type: 'info', start: e.time, end: NaN };
      const node = (e as { node?: unknown }).node;
      if (typeof node === 'string') op.node = node;
      open.set(k, op);
      out.push(op);
      continue;
    }
    const op = open.get(k);
    if (!op) continue;
    open.delete(k);
    op.type = e.type;
    op.end = e.time;
    if (e.type === 'ok' && e.f === 'read') op.result = e.value ?? null;
    if (typeof e.code === 'number') op.code = e.code;
    if (typeof e.error === 'string') op.error = e.error;
  }
  for (const op of open.values()) op.end = last;
  return out;
}

/** A short description of an operation and its outcome, for tooltips. */
export function describe(op: PictureOp): string {
  const v = JSON.stringify(op.value);
  const req = op.f === 'read' ? `read ${JSON.stringify(op.key)}` : op.f === 'write' ? `write ${JSON.stringify(op.key)} ${v}` : `cas ${JSON.stringify(op.key)} ${v}`;
  let res: string;
  if (op.type === 'ok') res = op.f === 'read' ? `ok ${JSON.stringify(op.result)}` : 'ok';
  else res = `${op.type}${op.code !== undefined ? ` ${op.code}` : ''}${op.error ? ` ${op.error}` : ''}`;
  const t = `${op.start.toFixed(1)}-${op.end.toFixed(1)} ms (${(op.end - op.start).toFixed(1)} ms)`;
  return `p${op.process}${op.node ? ` -> ${op.node}` : ''}: ${req} => ${res}, ${t}`;
}
