/** The cluster report as text for people (cli-table3). */
import Table from 'cli-table3';
import type { ClusterReport } from './runner.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

const dash = (v: number | string | null | undefined): string => (v === null || v === undefined ? '-' : String(v));

export function renderReport(r: ClusterReport, opts: { color: boolean }): string {
  const style = opts.color ? {} : { style: { head: [], border: [] } };
  const out: string[] = [];
  const summary = new Table({ ...style });
  const nem = new Map<string, number>();
  for (const e of r.nemesis) if (e.kind !== 'heal') nem.set(e.kind, (nem.get(e.kind) ?? 0) + 1);
  const lat = r.latencyMs;
  const t = r.totals;
  const noStats = 'n/a (no get_stats)';
  summary.push(
    { verdict: r.verdict },
    { 'node program': r.nodeProgram },
    {
      operations: `${r.ops.total} (ok ${r.ops.ok}, failed ${r.ops.fail}, indeterminate ${r.ops.info})`,
    },
    { throughput: `${r.throughput} ok/s` },
    { 'latency ms': `p50 ${dash(lat.p50)}  p95 ${dash(lat.p95)}  p99 ${dash(lat.p99)}  max ${dash(lat.max)}` },
    { elections: r.nodeStats ? `${t.elections} (leader changes ${t.leaderChanges})` : noStats },
    { snapshots: r.nodeStats ? `taken ${t.snapshotsTaken}, installed ${t.snapshotsInstalled}, transfers sent ${t.snapshotTransfers}` : noStats },
    { 'largest log': t.maxLogEntries === null ? '-' : `${t.maxLogEntries} entries` },
    { 'data on disk': formatBytes(t.dataDirBytes) },
    { nemesis: nem.size ? [...nem].map(([k, n]) => `${k} x${n}`).join(', ') : 'none' },
    {
      'node messages': `${r.network.nodeMessages} (dropped: ${r.network.droppedPartition} partition, ${r.network.droppedDown} node down; unknown dest ${r.network.unknownDest})`,
    },
    { crashes: r.crashes.length ? r.crashes.map((c) => c.id).join(', ') : 'none' },
    { check: `${r.check.ops} ops over ${r.check.keys.length} keys in ${r.check.elapsedMs} ms` },
    { results: r.resultsDir },
    { 'data root': r.dataRoot },
  );
  out.push(summary.toString());

  const nodes = new Table({
    ...style,
    head: ['node', 'role', 'term', 'starts', 'elections', 'snap taken', 'snap installed', 'transfers sent', 'max log', 'data dir', 'exit'],
  });
  for (const n of r.nodes) {
    nodes.push([
      n.id,
      dash(n.role),
      dash(n.term),
      n.starts,
      n.statsAvailable ? n.elections : '-',
      n.statsAvailable ? n.snapshotsTaken : '-',
      n.statsAvailable ? n.snapshotsInstalled : '-',
      n.statsAvailable ? n.snapshotTransfersSent : '-',
      dash(n.maxLogEntries),
      n.dataDirBytes === null ? '-' : formatBytes(n.dataDirBytes),
      n.exitSignal ?? dash(n.exitCode),
    ]);
  }
  out.push(nodes.toString());

  if (r.nemesis.length) {
    out.push('nemesis:');
    for (const e of r.nemesis) out.push(`  ${(e.time / 1000).toFixed(1).padStart(6)} s  ${e.kind.padEnd(9)} ${e.detail}`);
  }
  for (const v of r.check.violations) out.push('', v.message);
  if (r.problems.length) {
    out.push('', 'problems:');
    for (const p of r.problems) out.push(`  - ${p}`);
  }
  if (r.warnings.length) {
    out.push('', 'warnings:');
    for (const w of r.warnings) out.push(`  - ${w}`);
  }
  if (r.network.errors.length) {
    out.push('', 'network errors (first ones):');
    for (const e of r.network.errors.slice(0, 10)) out.push(`  - ${e}`);
  }
  out.push(
    '',
    r.verdict === 'linearizable'
      ? `Linearizable${r.vacuous ? ', but vacuously: no operation completed ok.' : '.'} ${r.crashes.length ? 'But a node crashed.' : ''}`.trim()
      : r.verdict === 'unknown'
        ? 'The check did not finish within its budget: verdict unknown.'
        : 'NOT linearizable.',
  );
  return out.join('\n');
}
