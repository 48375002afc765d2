// Event-loop delay of a node process, for bench/snapshot-load.js: loaded before the node with
//   node --require bench/loop-delay-preload.cjs bin/run.js serve ...
// and the environment variable RAFTSNAP_LOOP_DELAY_FILE naming a file. perf_hooks'
// monitorEventLoopDelay (resolution 1 ms) runs from the start; every SIGUSR2 appends one JSON line
// { why: "signal", maxMs, p99Ms, meanMs, count } covering the time since the previous line (or the
// start) and starts a fresh histogram, and the process's exit appends a last one (why: "exit").
// Without the variable it does nothing. The node itself is not changed.
/* global require */
'use strict';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { monitorEventLoopDelay } = require('node:perf_hooks');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs');

const file = process.env.RAFTSNAP_LOOP_DELAY_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const dump = (why) => {
    const line = { why, pid: process.pid, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, meanMs: h.mean / 1e6, count: h.count };
    fs.appendFileSync(file, JSON.stringify(line) + '\n');
    h.reset();
  };
  process.on('SIGUSR2', () => dump('signal'));
  process.on('exit', () => dump('exit'));
}
