import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '@oclif/test';
import { afterEach, expect } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Fixed creation time for files the commands write (2024-01-02T03:04:05Z). */
export const EPOCH = '1704164645';

export interface Run {
  stdout: string;
  stderr: string;
  exit: number;
}

/** In-process run through oclif (paths relative to the repository root). */
export async function inproc(args: string[]): Promise<Run> {
  const prev = process.env['SOURCE_DATE_EPOCH'];
  const cwd = process.cwd();
  process.env['SOURCE_DATE_EPOCH'] = EPOCH;
  process.chdir(ROOT);
  try {
    const r = await runCommand(args, { root: ROOT });
    const err = r.error as { oclif?: { exit?: number } } | undefined;
    return { stdout: r.stdout, stderr: r.stderr, exit: err ? (err.oclif?.exit ?? 1) : 0 };
  } finally {
    process.chdir(cwd);
    if (prev === undefined) delete process.env['SOURCE_DATE_EPOCH'];
    else process.env['SOURCE_DATE_EPOCH'] = prev;
  }
}

/** A real `node bin/run.js` process in the repository root. */
export function proc(args: string[]): Run {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH, NODE_ENV: 'production' },
  });
  return { stdout: r.stdout, stderr: r.stderr, exit: r.status ?? -1 };
}

/** Compare with fixtures/golden/<name>; UPDATE_GOLDEN=1 rewrites it. */
export function golden(name: string, text: string): void {
  const file = path.join(ROOT, 'fixtures', 'golden', name);
  if (process.env['UPDATE_GOLDEN'] === '1' || !fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  expect(text).toBe(fs.readFileSync(file, 'utf8'));
}

const made: string[] = [];
afterEach(() => {
  while (made.length > 0) fs.rmSync(made.pop()!, { recursive: true, force: true });
});

/** A temporary directory under the repository's tmp/ (so that relative paths stay short), removed after the test. */
export function tmpDir(): string {
  const base = path.join(ROOT, 'tmp');
  fs.mkdirSync(base, { recursive: true });
  const d = fs.mkdtempSync(path.join(base, 'tools-'));
  made.push(d);
  return d;
}

/** Copy a fixture data directory into a temp dir; returns its path relative to the root. */
export function copyFixture(name: string): string {
  const d = tmpDir();
  fs.cpSync(path.join(ROOT, 'fixtures', name), path.join(d, name), { recursive: true });
  return path.relative(ROOT, path.join(d, name));
}

/** Hash of every file (name, size, bytes) under a directory: "did anything change?". */
export function treeHash(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      const st = fs.statSync(p);
      if (st.isDirectory()) {
        h.update(`D ${path.relative(dir, p)}\n`);
        walk(p);
      } else h.update(`F ${path.relative(dir, p)} ${st.size}\n`).update(fs.readFileSync(p));
    }
  };
  walk(path.resolve(ROOT, dir));
  return h.digest('hex');
}

export function abs(p: string): string {
  return path.resolve(ROOT, p);
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export { os };
