/** The cluster report as text for people (cli-table3). */
import Table from 'cli-table3';
import type { ClusterReport } from './summary.js';

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
  const net = r.network;
  const noStats = 'n/a (no get_stats)';
  summary.push(
    { verdict: r.verdict },
    { 'node program': r.nodeProgram },
    {
      operations: `${r.ops.total} (ok ${r.ops.ok}, failed ${r.ops.fail}, indeterminate ${r.ops.info})`,
    },
    {
      availability: `${(r.availability.okFraction * 100).toFixed(1)}% ok${r.availability.required !== null ? ` (required: ${r.availability.required}${r.availability.valid ? '' : ', NOT met'})` : ''}`,
    },
    { throughput: `${r.throughput} ok/s` },
    { 'latency ms': `p50 ${dash(lat.p50)}  p95 ${dash(lat.p95)}  p99 ${dash(lat.p99)}  max ${dash(lat.max)}` },
    {
      'failures by code': r.failures.length
        ? r.failures
            .slice(0, 8)
            .map((f) => `${f.f} ${f.type} ${f.code ?? ''} ${f.name}: ${f.count}`.replace('  ', ' '))
            .join('\n')
        : 'none',
    },
    { elections: r.nodeStats ? `${t.elections} (leader changes ${t.leaderChanges})` : noStats },
    { snapshots: r.nodeStats ? `taken ${t.snapshotsTaken}, installed ${t.snapshotsInstalled}, transfers sent ${t.snapshotTransfers}` : noStats },
    { 'follower reads': r.nodeStats ? `${t.followerReads} (ok reads: ${r.ops.byF.read.ok})` : noStats },
    { 'largest log': t.maxLogEntries === null ? '-' : `${t.maxLogEntries} entries` },
    { 'data on disk': formatBytes(t.dataDirBytes) },
    { nemesis: nem.size ? [...nem].map(([k, n]) => `${k} x${n}`).join(', ') : 'none' },
    {
      network: `sent ${net.all.sends}, received ${net.all.receives} (clients ${net.clients.sends} / ${net.clients.receives}, between nodes ${net.servers.sends} / ${net.servers.receives})`,
    },
    { 'msgs per op': `all ${dash(net.msgsPerOp.all)}, clients ${dash(net.msgsPerOp.clients)}, between nodes ${dash(net.msgsPerOp.servers)}` },
    { dropped: `partition ${net.dropped.partition}, node down ${net.dropped.nodeDown}, unknown destination ${net.dropped.unknownDest}` },
    { crashes: r.crashes.length ? r.crashes.map((c) => c.id).join(', ') : 'none' },
    { check: `${r.check.ops} ops over ${r.check.keys.length} keys in ${r.check.elapsedMs} ms` },
    { results: `${r.resultsDir}${r.files.includes('index.html') ? '/index.html' : ''}` },
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
  const verdict =
    r.verdict === 'linearizable'
      ? `Linearizable${r.vacuous ? ', but vacuously: no operation completed ok.' : '.'}${r.crashes.length ? ' But a node crashed.' : ''}`
      : r.verdict === 'unknown'
        ? 'The check did not finish within its budget: verdict unknown.'
        : 'NOT linearizable.';
  const availability = r.availability.valid ? '' : ' Availability below what --availability requires.';
  out.push('', `${r.aborted ? 'Interrupted: ' : ''}${verdict}${availability}`);
  return out.join('\n');
}
