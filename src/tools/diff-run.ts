import { diffStates, type DiffResult } from './diff.js';
import { loadState } from './load.js';

/** Load both sides (read-only) and compare them. */
export async function runDiff(a: string, b: string, opts: { keys?: boolean } = {}): Promise<{ result: DiffResult; warnings: string[] }> {
  const la = await loadState(a);
  const lb = await loadState(b);
  return { result: diffStates(la.state, lb.state, opts), warnings: [...la.warnings, ...lb.warnings] };
}
