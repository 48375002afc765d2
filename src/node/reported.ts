/**
 * Errors whose FATAL line has been written already: a failed start of `serve --data-dir` says
 * what is wrong at once (main.ts); the `init` that arrives afterwards is answered with the same
 * error (init.ts) without a second FATAL line.
 */
const said = new WeakSet<object>();

/** `e`'s FATAL line has been written. */
export function markReported(e: unknown): void {
  if (e !== null && typeof e === 'object') said.add(e);
}

/** Whether `e`'s FATAL line has been written. */
export function wasReported(e: unknown): boolean {
  return e !== null && typeof e === 'object' && said.has(e);
}
