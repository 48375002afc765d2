/**
 * Writes a run's results directory: history.jsonl and report.json first (so that they exist
 * whatever happens next), then the pictures (latency-raw.svg, latency-quantiles.svg, rate.svg,
 * timeline.html, messages.svg, linear-<key>.html for keys that are not linearizable) and
 * index.html tying them together, then report.json again with the list of files. A picture that
 * cannot be drawn is a warning in the report, never a lost run. With `linkLatest`, the symbolic
 * link `latest` beside the run directory is pointed at it (a `latest` that is not a symbolic link
 * is left alone).
 */
import { lstat, readdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HistoryEvent } from '../../check/history.js';
import { toOperations } from '../../check/history.js';
import type { CheckResult } from '../../check/linearizability.js';
import { canonicalJson } from '../../kv/keys.js';
import type { MessageJournal } from '../journal.js';
import type { ClusterReport } from '../summary.js';
import { indexHtml } from './index-page.js';
import { linearFileName, linearHtml } from './linear.js';
import { messagesSvg } from './messages.js';
import { pairOps } from './ops.js';
import { PLOTS, renderSvgs } from './plots.js';
import { timelineHtml } from './timeline.js';

export interface ResultsInput {
  dir: string;
  linkLatest: boolean;
  report: ClusterReport;
  history: readonly HistoryEvent[];
  check: CheckResult;
  journal: MessageJournal;
  ids: readonly string[];
}

/** Keys pictured at most when several are not linearizable. */
const MAX_LINEAR_PAGES = 5;

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

const reportJson = (r: ClusterReport): string => JSON.stringify(r, null, 2) + '\n';

export async function writeResults(x: ResultsInput): Promise<void> {
  const { dir, report, history, check } = x;
  await writeAtomic(join(dir, 'history.jsonl'), history.map((e) => JSON.stringify(e)).join('\n') + (history.length ? '\n' : ''));
  await writeAtomic(join(dir, 'report.json'), reportJson(report));
  const files: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      report.warnings.push(`${what} could not be drawn: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const ops = pairOps(history);
  const endMs = Math.max(1, ...ops.map((o) => o.end), ...report.faults.map((f) => f.end));
  const svgs: Array<{ file: string; svg: string | null }> = PLOTS.map((p) => ({ file: p.file, svg: null }));
  await attempt('the plots', async () => {
    const rendered = await renderSvgs(PLOTS.map((p) => p.spec({ ops, faults: report.faults, endMs })));
    for (let i = 0; i < PLOTS.length; i++) {
      await writeAtomic(join(dir, PLOTS[i]!.file), rendered[i]!);
      svgs[i]!.svg = rendered[i]!;
      files.push(PLOTS[i]!.file);
    }
  });
  await attempt('timeline.html', async () => {
    await writeAtomic(join(dir, 'timeline.html'), timelineHtml(ops, report.faults, `timeline: ${basename(dir)}`));
    files.push('timeline.html');
  });
  await attempt('messages.svg', async () => {
    await writeAtomic(join(dir, 'messages.svg'), messagesSvg(x.ids, x.journal.messages(), x.journal.truncated));
    files.push('messages.svg');
  });
  const linearFiles: Array<{ key: unknown; file: string }> = [];
  if (check.violations.length > 0) {
    await attempt('the pictures of keys that are not linearizable', async () => {
      const all = toOperations([...history]).ops;
      for (const v of check.violations.slice(0, MAX_LINEAR_PAGES)) {
        const k = canonicalJson(v.key);
        const file = linearFileName(v.key);
        await writeAtomic(join(dir, file), linearHtml(all.filter((o) => canonicalJson(o.key) === k), v));
        linearFiles.push({ key: v.key, file });
        files.push(file);
      }
    });
  }
  if (x.linkLatest) await linkLatest(dir, report);
  const logs = (await readdir(dir)).filter((f) => /^n\d+\.log$/.test(f)).sort((a, b) => Number(a.slice(1, -4)) - Number(b.slice(1, -4)));
  await attempt('index.html', async () => {
    files.push('index.html');
    report.files = [...files];
    await writeAtomic(join(dir, 'index.html'), indexHtml(report, svgs, linearFiles, logs));
  });
  report.files = files;
  await writeAtomic(join(dir, 'report.json'), reportJson(report));
}

async function linkLatest(dir: string, report: ClusterReport): Promise<void> {
  const link = join(dirname(dir), 'latest');
  try {
    const st = await lstat(link).catch(() => null);
    if (st && !st.isSymbolicLink()) {
      report.warnings.push(`${link} exists and is not a symbolic link; left alone`);
      return;
    }
    if (st) await unlink(link);
    await symlink(basename(dir), link);
  } catch (e) {
    report.warnings.push(`could not point ${link} at this run: ${e instanceof Error ? e.message : String(e)}`);
  }
}
