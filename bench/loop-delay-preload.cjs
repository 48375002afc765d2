// Event-loop delay of a node process, for bench/snapshot-load.js: loaded before the node with
//   node --require bench/loop-delay-preload.cjs bin/run.js serve ...
// and the environment variable RAFTSNAP_LOOP_DELAY_FILE naming a file. perf_hooks'
// monitorEventLoopDelay (resolution 1 ms) runs from the start; every SIGUSR2 appends one JSON line
// { why: "signal", maxMs, p99Ms, meanMs, count } covering the time since the previous line (or the
// start) and starts a fresh histogram, and the process's exit appends a last one (why: "exit").
// With RAFTSNAP_LOOP_DELAY_SLICE_MS = M as well, a second histogram is read and reset every M ms
// and the line carries these slices too: `slices` = [[end, maxMs], ...], `end` in milliseconds
// since the epoch (performance.timeOrigin + now: comparable across processes on one machine); a
// pause shows in the slice in which it ended or the next. Every line also carries the garbage
// collections of its stretch that took 1 ms or more: `gcs` = [[start, ms, kind], ...] (start since
// the epoch; kind as perf_hooks' NODE_PERFORMANCE_GC_*: 1 minor, 4 major, 8 incremental, 16 weak
// callbacks). Without the first variable it does nothing. The node itself is not changed.
/* global require */
'use strict';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { monitorEventLoopDelay, performance, PerformanceObserver } = require('node:perf_hooks');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs');

const file = process.env.RAFTSNAP_LOOP_DELAY_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const sliceMs = Number(process.env.RAFTSNAP_LOOP_DELAY_SLICE_MS ?? 0);
  let slices = [];
  if (sliceMs > 0) {
    const hs = monitorEventLoopDelay({ resolution: 1 });
    hs.enable();
    setInterval(() => {
      slices.push([performance.timeOrigin + performance.now(), hs.max / 1e6]);
      hs.reset();
    }, sliceMs).unref();
  }
  let gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.duration >= 1) gcs.push([performance.timeOrigin + e.startTime, e.duration, e.detail?.kind ?? 0]);
  }).observe({ entryTypes: ['gc'] });
  const dump = (why) => {
    const line = { why, pid: process.pid, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, meanMs: h.mean / 1e6, count: h.count, slices, gcs };
    fs.appendFileSync(file, JSON.stringify(line) + '\n');
    h.reset();
    slices = [];
    gcs = [];
  };
  process.on('SIGUSR2', () => dump('signal'));
  process.on('exit', () => dump('exit'));
}
