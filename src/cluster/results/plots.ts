/**
 * The performance plots of a run, as Jepsen's perf checker draws them for Maelstrom, made with
 * Vega-Lite and rendered to SVG by Vega in Node: latency-raw.svg (each operation's latency over
 * time, log scale, colour by outcome, shape by function), latency-quantiles.svg (p50 / p95 / p99 /
 * max of ok operations per time bucket) and rate.svg (operations per second by outcome and
 * function). Each plot shades the fault windows (mark class `nemesis_marks`) and marks the kills
 * and restarts (rules, class `events_marks`).
 *
 * Vega is imported only here, lazily, when a run writes its pictures: `raftsnap serve` and the
 * rest of the CLI never load it.
 */
import type { FaultWindow } from '../summary.js';
import { FAULT_COLORS, OUTCOME_COLORS } from './html.js';
import type { PictureOp } from './ops.js';

export interface PlotInput {
  ops: readonly PictureOp[];
  faults: readonly FaultWindow[];
  /** End of the plotted time range, ms. */
  endMs: number;
}

type Spec = Record<string, unknown>;

const WIDTH = 900;
const HEIGHT = 280;

function faultLayers(faults: readonly FaultWindow[]): Spec[] {
  const windows = faults.map((f) => ({ kind: f.kind, start: f.start / 1000, end: f.end / 1000, detail: f.detail }));
  const events: Array<{ t: number; what: string }> = [];
  for (const f of faults) {
    if (f.kind !== 'kill') continue;
    events.push({ t: f.start / 1000, what: 'kill' }, { t: f.end / 1000, what: 'restart' });
  }
  const kinds = Object.keys(FAULT_COLORS);
  const layers: Spec[] = [
    {
      name: 'nemesis',
      data: { values: windows.length ? windows : [{ kind: 'partition', start: 0, end: 0, detail: '' }] },
      mark: { type: 'rect', opacity: windows.length ? 0.45 : 0 },
      encoding: {
        x: { field: 'start', type: 'quantitative', title: 'time (s)' },
        x2: { field: 'end' },
        color: {
          field: 'kind',
          type: 'nominal',
          title: 'fault',
          scale: { domain: kinds, range: kinds.map((k) => FAULT_COLORS[k as keyof typeof FAULT_COLORS]) },
        },
      },
    },
  ];
  if (events.length) {
    layers.push({
      name: 'events',
      data: { values: events },
      mark: { type: 'rule', strokeWidth: 1.5 },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'time (s)' },
        strokeDash: { field: 'what', type: 'nominal', title: 'node', scale: { domain: ['kill', 'restart'], range: [[1, 0], [4, 3]] } },
        stroke: { value: '#8a1111' },
      },
    });
  }
  return layers;
}

function timeAxis(endMs: number): Spec {
  return { field: 't', type: 'quantitative', title: 'time (s)', scale: { domain: [0, Math.max(0.001, endMs / 1000)], nice: false } };
}

const outcomeScale = { domain: ['ok', 'info', 'fail'], range: [OUTCOME_COLORS.ok, OUTCOME_COLORS.info, '#E4509A'] };

export function latencyRawSpec(p: PlotInput): Spec {
  const values = p.ops.map((o) => ({ t: o.start / 1000, latency: Math.max(0.01, o.end - o.start), type: o.type, f: o.f }));
  return {
    width: WIDTH,
    height: HEIGHT,
    title: 'Latency of each operation',
    resolve: { scale: { color: 'independent', shape: 'independent' } },
    layer: [
      ...faultLayers(p.faults),
      {
        name: 'ops',
        data: { values },
        mark: { type: 'point', filled: true, size: 14, opacity: 0.7 },
        encoding: {
          x: timeAxis(p.endMs),
          y: { field: 'latency', type: 'quantitative', title: 'latency (ms)', scale: { type: 'log' } },
          color: { field: 'type', type: 'nominal', title: 'outcome', scale: outcomeScale },
          shape: { field: 'f', type: 'nominal', title: 'function', scale: { domain: ['read', 'write', 'cas'] } },
        },
      },
    ],
  };
}

function bucketMs(endMs: number): number {
  return Math.max(1000, Math.ceil(endMs / 40 / 100) * 100);
}

export function latencyQuantilesSpec(p: PlotInput): Spec {
  const size = bucketMs(p.endMs);
  const buckets = new Map<number, number[]>();
  for (const o of p.ops) {
    if (o.type !== 'ok') continue;
    const b = Math.floor(o.start / size);
    let l = buckets.get(b);
    if (!l) buckets.set(b, (l = []));
    l.push(o.end - o.start);
  }
  const values: Array<{ t: number; q: string; latency: number }> = [];
  for (const [b, l] of [...buckets].sort((x, y) => x[0] - y[0])) {
    l.sort((x, y) => x - y);
    const at = (q: number): number => l[Math.min(l.length - 1, Math.max(0, Math.ceil(q * l.length) - 1))]!;
    const t = ((b + 0.5) * size) / 1000;
    for (const [q, name] of [
      [0.5, 'p50'],
      [0.95, 'p95'],
      [0.99, 'p99'],
      [1, 'max'],
    ] as const) {
      values.push({ t, q: name, latency: Math.max(0.01, at(q)) });
    }
  }
  return {
    width: WIDTH,
    height: HEIGHT,
    title: `Latency quantiles of ok operations (${size / 1000} s buckets)`,
    resolve: { scale: { color: 'independent' } },
    layer: [
      ...faultLayers(p.faults),
      {
        name: 'quantiles',
        data: { values },
        mark: { type: 'line', point: true, strokeWidth: 1.5 },
        encoding: {
          x: timeAxis(p.endMs),
          y: { field: 'latency', type: 'quantitative', title: 'latency (ms)', scale: { type: 'log' } },
          color: { field: 'q', type: 'nominal', title: 'quantile', scale: { domain: ['p50', 'p95', 'p99', 'max'] } },
        },
      },
    ],
  };
}

export function rateSpec(p: PlotInput): Spec {
  const size = bucketMs(p.endMs);
  const counts = new Map<string, number>();
  const nb = Math.max(1, Math.ceil(p.endMs / size));
  for (const o of p.ops) {
    const b = Math.min(nb - 1, Math.floor(o.end / size));
    const k = `${b}|${o.f}|${o.type}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const values: Array<{ t: number; f: string; type: string; rate: number; series: string }> = [];
  for (const f of ['read', 'write', 'cas']) {
    for (const type of ['ok', 'info', 'fail']) {
      if (!p.ops.some((o) => o.f === f && o.type === type)) continue;
      for (let b = 0; b < nb; b++) {
        const n = counts.get(`${b}|${f}|${type}`) ?? 0;
        values.push({ t: ((b + 0.5) * size) / 1000, f, type, rate: n / (size / 1000), series: `${f} ${type}` });
      }
    }
  }
  return {
    width: WIDTH,
    height: HEIGHT,
    title: `Completed operations per second (${size / 1000} s buckets)`,
    resolve: { scale: { color: 'independent', strokeDash: 'independent' } },
    layer: [
      ...faultLayers(p.faults),
      {
        name: 'rates',
        data: { values },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: timeAxis(p.endMs),
          y: { field: 'rate', type: 'quantitative', title: 'operations / s' },
          color: { field: 'type', type: 'nominal', title: 'outcome', scale: outcomeScale },
          strokeDash: { field: 'f', type: 'nominal', title: 'function', scale: { domain: ['read', 'write', 'cas'] } },
          detail: { field: 'series' },
        },
      },
    ],
  };
}

/** Renders Vega-Lite specs to SVG texts (one Vega import for all of them). */
export async function renderSvgs(specs: Spec[]): Promise<string[]> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const out: string[] = [];
  for (const spec of specs) {
    const compiled = vl.compile({ config: { background: 'white' }, ...spec } as unknown as Parameters<typeof vl.compile>[0]).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    out.push(await view.toSVG());
    view.finalize();
  }
  return out;
}

export const PLOTS = [
  { file: 'latency-raw.svg', spec: latencyRawSpec },
  { file: 'latency-quantiles.svg', spec: latencyQuantilesSpec },
  { file: 'rate.svg', spec: rateSpec },
] as const;
