/**
 * Time as the driver sees it: a repeating timer for ticks, a clock for request deadlines, and a
 * way to let other work run between chunks of a long job. `serve` uses the real Node timers
 * (`realTimers`); the deterministic simulator (src/sim/) injects its own, so that ticks come from
 * its event queue, the clock is simulated time and nothing depends on the wall clock.
 */
export interface Timers {
  /** Call `fn` every `ms` milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Milliseconds (wall clock in serve, simulated time in the simulator). */
  now(): number;
  /** Let other work run (timers and I/O in serve): resolves a little later. */
  yield(): Promise<void>;
}

/** The real Node timers: setInterval, Date.now, setImmediate. */
export const realTimers: Timers = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  now: () => Date.now(),
  yield: () => new Promise((resolve) => setImmediate(resolve)),
};
