// Runs `node bin/run.js ...` as a real process and reads its peak resident set size (VmHWM), which
// the process prints itself as it exits (a preloaded module), so no external tool is needed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { ROOT } from '../commands/helpers.js';

const RUN = path.join(ROOT, 'bin', 'run.js');

const PRELOAD = `const fs = require('node:fs');
process.on('exit', () => {
  try {
    const m = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) fs.writeSync(2, '\\nVMHWM_KB ' + m[1] + '\\n');
  } catch {}
});
`;

const preloadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-hwm-'));
const preload = path.join(preloadDir, 'hwm.cjs');
fs.writeFileSync(preload, PRELOAD);
afterAll(() => fs.rmSync(preloadDir, { recursive: true, force: true }));

export interface Measured {
  exit: number;
  stdout: string;
  stderr: string;
  /** Peak RSS in MB (NaN where /proc is missing). */
  rssMb: number;
  ms: number;
}

export function measure(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdoutFile?: string } = {}): Measured {
  const t0 = Date.now();
  const out = opts.stdoutFile ? fs.openSync(opts.stdoutFile, 'w') : null;
  const r = spawnSync(process.execPath, ['-r', preload, RUN, ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_ENV: 'production', ...opts.env },
    maxBuffer: 1 << 30,
    ...(out !== null ? { stdio: ['ignore', out, 'pipe'] } : {}),
  });
  if (out !== null) fs.closeSync(out);
  const ms = Date.now() - t0;
  const stderr = r.stderr ?? '';
  const m = /\nVMHWM_KB (\d+)\n/.exec(stderr);
  return {
    exit: r.status ?? -1,
    stdout: r.stdout ?? '',
    stderr: stderr.replace(/\n?VMHWM_KB \d+\n/, ''),
    rssMb: m ? Number(m[1]) / 1024 : NaN,
    ms,
  };
}
