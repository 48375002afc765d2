/** Helpers to build histories for the checker's tests. */
import type { HistoryEvent, OpFn } from '../../src/check/index.js';
import type { Json } from '../../src/raft/types.js';
import { Random } from '../../src/cluster/random.js';

type Done = 'ok' | 'fail' | 'info' | 'none';

let nextProcess = 1000;

/**
 * One operation as a pair of events. `out` is the read value for reads; `code` for fail / info.
 */
export function op(
  f: OpFn,
  key: Json,
  value: Json,
  call: number,
  ret: number,
  done: Done = 'ok',
  opts: { out?: Json; code?: number; process?: number } = {},
): HistoryEvent[] {
  const process = opts.process ?? nextProcess++;
  const inv: HistoryEvent = { type: 'invoke', process, f, key, value: f === 'read' ? null : value, time: call };
  if (done === 'none') return [inv];
  const end: HistoryEvent = {
    type: done,
    process,
    f,
    key,
    value: f === 'read' ? (done === 'ok' ? (opts.out ?? value) : null) : value,
    time: ret,
  };
  if (opts.code !== undefined) end.code = opts.code;
  return [inv, end];
}

export const read = (key: Json, out: Json, call: number, ret: number): HistoryEvent[] =>
  op('read', key, out, call, ret, 'ok', { out });
export const write = (key: Json, v: Json, call: number, ret: number, done: Done = 'ok', code?: number): HistoryEvent[] =>
  op('write', key, v, call, ret, done, code !== undefined ? { code } : {});
export const cas = (
  key: Json,
  from: Json,
  to: Json,
  call: number,
  ret: number,
  done: Done = 'ok',
  code?: number,
): HistoryEvent[] => op('cas', key, [from, to], call, ret, done, code !== undefined ? { code } : {});

export const hist = (...parts: HistoryEvent[][]): HistoryEvent[] => parts.flat();

/** A small deterministic PRNG (the cluster runner's, as a plain function). */
export function rng(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

/**
 * A history produced by a real sequential execution: `processes` clients each run operations one
 * after another; every operation takes effect at a random instant inside its interval; results
 * come from applying the operations in the order of those instants. Some operations end
 * indeterminate (`pInfo`), and of those some never take effect at all.
 */
export function sequentialHistory(opts: {
  seed: number;
  ops: number;
  processes: number;
  keys: number;
  pInfo?: number;
  values?: number;
}): HistoryEvent[] {
  const r = rng(opts.seed);
  const values = opts.values ?? 5;
  const pInfo = opts.pInfo ?? 0.05;
  interface Planned {
    process: number;
    f: OpFn;
    key: number;
    value: Json;
    call: number;
    ret: number;
    lin: number;
    info: boolean;
    applies: boolean;
  }
  const planned: Planned[] = [];
  const clock = new Array<number>(opts.processes).fill(0);
  const procId = Array.from({ length: opts.processes }, (_, i) => i);
  for (let n = 0; n < opts.ops; n++) {
    const p = Math.floor(r() * opts.processes);
    const call = clock[p]! + r() * 3;
    const ret = call + 0.1 + r() * 10;
    const lin = call + r() * (ret - call);
    const x = r();
    const f: OpFn = x < 0.4 ? 'read' : x < 0.7 ? 'write' : 'cas';
    const key = Math.floor(r() * opts.keys);
    const value: Json =
      f === 'read' ? null : f === 'write' ? Math.floor(r() * values) : [Math.floor(r() * values), Math.floor(r() * values)];
    const info = r() < pInfo;
    planned.push({ process: procId[p]!, f, key, value, call, ret, lin, info, applies: !info || r() < 0.5 });
    clock[p] = ret;
    if (info) procId[p]! += opts.processes; // a client continues as a new process after info
  }
  // Apply in linearization order.
  const state = new Map<number, Json>();
  const results = new Map<Planned, { type: 'ok' | 'fail' | 'info'; out?: Json; code?: number }>();
  for (const o of [...planned].sort((a, b) => a.lin - b.lin)) {
    if (!o.applies) {
      results.set(o, { type: 'info', code: 0 });
      continue;
    }
    const cur = state.get(o.key);
    let res: { type: 'ok' | 'fail' | 'info'; out?: Json; code?: number };
    if (o.f === 'read') res = { type: 'ok', out: cur === undefined ? null : cur };
    else if (o.f === 'write') {
      state.set(o.key, o.value);
      res = { type: 'ok' };
    } else {
      const [from, to] = o.value as [Json, Json];
      if (cur === undefined) res = { type: 'fail', code: 20 };
      else if (cur !== from) res = { type: 'fail', code: 22 };
      else {
        state.set(o.key, to);
        res = { type: 'ok' };
      }
    }
    if (o.info) res = { type: 'info', code: 0 };
    results.set(o, res);
  }
  const events: HistoryEvent[] = [];
  for (const o of planned) {
    const res = results.get(o)!;
    events.push({ type: 'invoke', process: o.process, f: o.f, key: o.key, value: o.value, time: o.call });
    const end: HistoryEvent = {
      type: res.type,
      process: o.process,
      f: o.f,
      key: o.key,
      value: o.f === 'read' ? (res.type === 'ok' ? res.out! : null) : o.value,
      time: res.type === 'info' ? o.ret + 100 : o.ret,
    };
    if (res.code !== undefined) end.code = res.code;
    events.push(end);
  }
  return events.sort((a, b) => a.time - b.time);
}
