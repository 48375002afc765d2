import { it } from 'vitest';
import { checkHistory } from '../../src/check/index.js';
import { sequentialHistory } from './gen.js';
it('x', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const h = sequentialHistory({ seed, ops: 60, processes: 4, keys: 1, pInfo: 0 });
    const reads = h.filter((e) => e.type === 'ok' && e.f === 'read');
    reads[reads.length - 1]!.value = 'never-written';
    let t = performance.now();
    const r = checkHistory(h, { explain: false });
    const a = performance.now() - t; t = performance.now();
    const r2 = checkHistory(h, { explain: true, timeBudgetMs: 5000 });
    console.log(seed, r.verdict, a.toFixed(1), (performance.now() - t).toFixed(1), r2.violations[0]?.ops.length);
  }
});
