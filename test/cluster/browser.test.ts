// The result pages in a real browser: Debian's headless Chromium driven by puppeteer-core. Opens
// index.html, timeline.html, messages.svg and a linear-<key>.html of real runs, finds no console
// error and the expected elements, and saves screenshots in the results directory of the run.
// RAFTSNAP_SCREENSHOTS=DIR also copies them there (how docs/img/ was made).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './tmp.js';
import { parseHistoryText, type HistoryEvent } from '../../src/check/history.js';
import { runCluster, type ClusterOptions } from '../../src/cluster/runner.js';
import { timelineHtml } from '../../src/cluster/results/timeline.js';
import { pairOps } from '../../src/cluster/results/ops.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const python = spawnSync('python3', ['--version']).status === 0;
const built = existsSync(fileURLToPath(new URL('../../dist/node/main.js', import.meta.url)));
const FAKE = fileURLToPath(new URL('./fixtures/fake-node.mjs', import.meta.url));
const LOCAL_READS = fileURLToPath(new URL('../fixtures/lin-kv-local-reads.py', import.meta.url));
const copyTo = process.env.RAFTSNAP_SCREENSHOTS;

function options(over: Partial<ClusterOptions>): ClusterOptions {
  const dir = tempDir('raftsnap-cluster-browser-');
  return {
    nodes: 3,
    time: 6,
    rate: 100,
    concurrency: 6,
    keys: 5,
    latency: 5,
    latencyDist: 'exponential',
    nemesis: ['partition', 'kill'],
    nemesisInterval: 1,
    quiet: 1,
    dataRoot: join(dir, 'data'),
    results: join(dir, 'results'),
    snapshotThreshold: 50,
    trailingLogs: 10,
    seed: 7,
    checkBudget: 20,
    ...over,
  };
}

let browser: Browser;

async function open(url: string, viewport = { width: 1100, height: 760 }): Promise<{ page: Page; errors: string[]; loadMs: number }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  await page.setViewport(viewport);
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load' });
  return { page, errors, loadMs: Date.now() - t0 };
}

async function shot(page: Page, dir: string, name: string, clip?: { x: number; y: number; width: number; height: number }): Promise<void> {
  const path = join(dir, name);
  await page.screenshot({ path, ...(clip ? { clip } : {}) });
  if (copyTo) {
    mkdirSync(copyTo, { recursive: true });
    copyFileSync(path, join(copyTo, name));
  }
}

const count = (page: Page, selector: string): Promise<number> => page.$$eval(selector, (xs) => xs.length);

describe.skipIf(!haveChromium)('result pages in headless Chromium', () => {
  beforeAll(async () => {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('index.html, timeline.html and messages.svg of a run under partitions and kills', async () => {
    // raftsnap's own nodes when built, else the fake node (the pages are the same kind).
    const o = options(built ? {} : { nodeScript: FAKE });
    const r = await runCluster(o);
    const dir = o.results!;
    expect(r.faults.length).toBeGreaterThanOrEqual(2);
    const history = parseHistoryText(readFileSync(join(dir, 'history.jsonl'), 'utf8'));
    const invocations = history.filter((e) => e.type === 'invoke').length;

    const index = await open(pathToFileURL(join(dir, 'index.html')).href, { width: 1100, height: 900 });
    expect(index.errors).toEqual([]);
    expect(await index.page.$eval('#verdict', (e) => e.textContent)).toBe(r.vacuous ? 'linearizable, but vacuously (no operation completed ok)' : r.verdict);
    expect(await count(index.page, 'figure.plot svg')).toBe(3);
    // The report table as a reader sees it: the follower-reads row carries the run's own count.
    const rows = await index.page.$$eval('table tr', (trs) => trs.map((tr) => [...tr.children].map((c) => (c.textContent ?? '').trim())));
    const followerReads = rows.find((cells) => cells[0] === 'follower reads');
    if (r.nodeStats) expect(followerReads?.[1]).toBe(`${r.totals.followerReads} (ok reads: ${r.ops.byF.read.ok})`);
    // Every plot shades every fault window, and marks the kills and restarts.
    for (const id of ['latency-raw.svg', 'latency-quantiles.svg', 'rate.svg']) {
      const shaded = await index.page.$$eval(`figure[id="${id}"] g.nemesis_marks path`, (xs) => xs.length);
      expect(shaded, id).toBe(r.faults.length);
      if (r.faults.some((f) => f.kind === 'kill')) expect(await count(index.page, `figure[id="${id}"] g.events_marks path, figure[id="${id}"] g.events_marks line`), id).toBeGreaterThan(0);
    }
    const links = await index.page.$$eval('nav a', (xs) => xs.map((a) => a.getAttribute('href')));
    expect(links).toEqual(expect.arrayContaining(['timeline.html', 'messages.svg', 'history.jsonl', 'report.json', 'n1.log']));
    await shot(index.page, dir, 'index.png');
    const plot = await index.page.$('figure[id="latency-raw.svg"]');
    await plot!.screenshot({ path: join(dir, 'latency-raw.png') });
    if (copyTo) copyFileSync(join(dir, 'latency-raw.png'), join(copyTo, 'latency-raw.png'));

    const tl = await open(pathToFileURL(join(dir, 'timeline.html')).href, { width: 900, height: 700 });
    expect(tl.errors).toEqual([]);
    expect(await count(tl.page, '#tl .op')).toBe(invocations);
    expect(await count(tl.page, '#tl .fault')).toBe(r.faults.length);
    const tip = await tl.page.$eval('#tl .op', (e) => e.getAttribute('title'));
    expect(tip).toMatch(/^p\d+ -> n\d: (read|write|cas) /);
    await tl.page.evaluate(() => window.scrollTo(0, 400));
    await shot(tl.page, dir, 'timeline.png');

    const msgs = await open(pathToFileURL(join(dir, 'messages.svg')).href, { width: 900, height: 700 });
    expect(msgs.errors).toEqual([]);
    const arrows = await count(msgs.page, 'g.m');
    expect(arrows).toBeGreaterThan(100);
    expect(arrows).toBeLessThanOrEqual(2000);
    expect(await count(msgs.page, 'g.m.client')).toBeGreaterThan(0);
    expect(await count(msgs.page, 'g.m.server')).toBeGreaterThan(0);
    await shot(msgs.page, dir, 'messages.png');
  });

  it.skipIf(!python)('linear-<key>.html of a node that answers reads from local state', async () => {
    const o = options({ bin: LOCAL_READS, time: 3, keys: 2, nemesis: [], seed: 5, latency: 2 });
    const r = await runCluster(o);
    expect(r.verdict).toBe('not-linearizable');
    const dir = o.results!;
    const file = r.files.find((f) => f.startsWith('linear-'))!;
    expect(file).toMatch(/^linear-\d\.html$/);
    const p = await open(pathToFileURL(join(dir, file)).href, { width: 1100, height: 520 });
    expect(p.errors).toEqual([]);
    expect(await count(p.page, '.op.stuck')).toBe(1);
    expect(await count(p.page, '.op.linearized')).toBeGreaterThan(0);
    expect(await count(p.page, 'circle.point')).toBe(await count(p.page, '.op.linearized'));
    expect(await p.page.$eval('.stuckline', (e) => e.textContent)).toMatch(/must take effect, and cannot:\s+the state before it is/);
    await shot(p.page, dir, 'linear.png');
    const index = await open(pathToFileURL(join(dir, 'index.html')).href);
    expect(index.errors).toEqual([]);
    expect(await index.page.$eval('#verdict', (e) => e.textContent)).toBe('NOT linearizable');
    expect(await index.page.$$eval('nav a', (xs) => xs.map((a) => a.getAttribute('href')))).toContain(file);
  });

  it('a timeline of 12,000 operations draws one bar each, quickly', async () => {
    const history: HistoryEvent[] = [];
    for (let i = 0; i < 12_000; i++) {
      const p = i % 40;
      const t = Math.floor(i / 40) * 20;
      history.push({ type: 'invoke', process: p, f: 'write', key: i % 5, value: i % 5, time: t });
      history.push({ type: i % 7 === 0 ? 'info' : 'ok', process: p, f: 'write', key: i % 5, value: i % 5, time: t + 5 + (i % 11) });
    }
    const dir = tempDir('raftsnap-cluster-timeline-');
    const t0 = Date.now();
    writeFileSync(join(dir, 'timeline.html'), timelineHtml(pairOps(history), [{ kind: 'partition', start: 1000, end: 2000, detail: 'x' }], 'big'));
    const writeMs = Date.now() - t0;
    const tl = await open(pathToFileURL(join(dir, 'timeline.html')).href);
    expect(tl.errors).toEqual([]);
    expect(await count(tl.page, '#tl .op')).toBe(12_000);
    console.log(`timeline of 12,000 operations: written in ${writeMs} ms, loaded and drawn in ${tl.loadMs} ms`);
    expect(tl.loadMs).toBeLessThan(5000);
  });
});
