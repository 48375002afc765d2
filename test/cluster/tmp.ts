// Temporary directories of the cluster tests: removed after a test that passed, kept (and named
// on stderr) after one that failed, so that its logs and data directories can be looked at.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];

afterEach((ctx) => {
  const failed = ctx.task.result?.state === 'fail' || (ctx.task.result?.errors?.length ?? 0) > 0;
  while (made.length > 0) {
    const d = made.pop()!;
    if (failed) process.stderr.write(`kept ${d} (the test failed)\n`);
    else rmSync(d, { recursive: true, force: true });
  }
});

/** A fresh directory under the system temp dir, cleaned up after the test if it passes. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
