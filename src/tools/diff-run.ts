import type { DiffResult } from './diff.js';
import { streamDiff } from './diff-stream.js';

/**
 * Compare two states (read-only), streamed: neither side is built in memory (diff-stream.ts;
 * the same result as diffStates on the states loaded whole, test/tools/dump-diff-stream.test.ts).
 */
export async function runDiff(a: string, b: string, opts: { keys?: boolean } = {}): Promise<{ result: DiffResult; warnings: string[] }> {
  return streamDiff(a, b, opts);
}
