/**
 * index.html of a results directory: the verdict, the report as tables, the three plots inline,
 * and links to the timeline, the message diagram, the pictures of keys that are not
 * linearizable, the history, report.json and the node logs.
 */
import { basename } from 'node:path';
import { formatBytes } from '../report.js';
import type { ClusterReport } from '../summary.js';
import { esc, page } from './html.js';

const dash = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));

function kvTable(rows: Array<[string, string]>): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><td><b>${esc(k)}</b></td><td>${v}</td></tr>`).join('')}</table>`;
}

export function indexHtml(r: ClusterReport, svgs: Array<{ file: string; svg: string | null }>, linearFiles: Array<{ key: unknown; file: string }>, nodeLogs: string[]): string {
  const cls = r.verdict === 'linearizable' && r.exitCode === 0 ? 'ok' : r.verdict === 'unknown' || r.aborted ? 'unknown' : 'bad';
  const verdictText =
    r.verdict === 'linearizable'
      ? r.vacuous
        ? 'linearizable, but vacuously (no operation completed ok)'
        : 'linearizable'
      : r.verdict === 'unknown'
        ? 'unknown (the check ran out of its budget)'
        : 'NOT linearizable';
  const lat = r.latencyMs;
  const t = r.totals;
  const n = r.network;
  const nem = new Map<string, number>();
  for (const e of r.nemesis) if (e.kind !== 'heal') nem.set(e.kind, (nem.get(e.kind) ?? 0) + 1);
  const summary = kvTable([
    ['verdict', `<span class="verdict ${cls}">${esc(verdictText)}</span> exit code ${r.exitCode}${r.aborted ? ' (interrupted)' : ''}`],
    ['node program', `<code>${esc(r.nodeProgram)}</code>`],
    ['operations', esc(`${r.ops.total} (ok ${r.ops.ok}, failed ${r.ops.fail}, indeterminate ${r.ops.info})`)],
    ['availability', esc(`${(r.availability.okFraction * 100).toFixed(1)}% of operations ok${r.availability.required !== null ? `, required ${r.availability.required}` : ''}`)],
    ['throughput', esc(`${r.throughput} ok/s`)],
    ['latency ms', esc(`p50 ${dash(lat.p50)}  p95 ${dash(lat.p95)}  p99 ${dash(lat.p99)}  max ${dash(lat.max)}`)],
    [
      'failures by code',
      r.failures.length
        ? r.failures.map((f) => esc(`${f.f} ${f.type} ${f.code ?? ''} ${f.name}: ${f.count}`)).join('<br>')
        : 'none',
    ],
    ['network', esc(`sent ${n.all.sends}, received ${n.all.receives}; clients ${n.clients.sends} / ${n.clients.receives}; between nodes ${n.servers.sends} / ${n.servers.receives}`)],
    ['messages per op', esc(`all ${dash(n.msgsPerOp.all)}, clients ${dash(n.msgsPerOp.clients)}, between nodes ${dash(n.msgsPerOp.servers)}`)],
    ['dropped', esc(`partition ${n.dropped.partition}, node down ${n.dropped.nodeDown}, unknown destination ${n.dropped.unknownDest}`)],
    ['elections', r.nodeStats ? esc(`${t.elections} (leader changes ${t.leaderChanges})`) : 'n/a (no get_stats)'],
    ['snapshots', r.nodeStats ? esc(`taken ${t.snapshotsTaken}, installed ${t.snapshotsInstalled}, transfers sent ${t.snapshotTransfers}`) : 'n/a (no get_stats)'],
    ['follower reads', r.nodeStats ? esc(`${t.followerReads} (ok reads: ${r.ops.byF.read.ok})`) : 'n/a (no get_stats)'],
    ['data on disk', esc(formatBytes(t.dataDirBytes))],
    ['nemesis', esc(nem.size ? [...nem].map(([k, c]) => `${k} x${c}`).join(', ') : 'none')],
    ['crashes', esc(r.crashes.length ? r.crashes.map((c) => c.id).join(', ') : 'none')],
    ['check', esc(`${r.check.ops} ops over ${r.check.keys.length} keys in ${r.check.elapsedMs} ms`)],
    ['duration', esc(`${r.durationS} s`)],
  ]);
  const nodes = `<table class="grid"><tr><th>node</th><th>role</th><th>term</th><th>starts</th><th>kills</th><th>pauses</th><th>elections</th><th>snap taken</th><th>snap installed</th><th>max log</th><th>data dir</th><th>exit</th></tr>${r.nodes
    .map(
      (x) =>
        `<tr><td>${esc(x.id)}</td><td>${esc(dash(x.role))}</td><td>${esc(dash(x.term))}</td><td>${x.starts}</td><td>${x.kills}</td><td>${x.pauses}</td><td>${x.statsAvailable ? x.elections : '-'}</td><td>${x.statsAvailable ? x.snapshotsTaken : '-'}</td><td>${x.statsAvailable ? x.snapshotsInstalled : '-'}</td><td>${esc(dash(x.maxLogEntries))}</td><td>${x.dataDirBytes === null ? '-' : esc(formatBytes(x.dataDirBytes))}</td><td>${esc(x.exitSignal ?? dash(x.exitCode))}</td></tr>`,
    )
    .join('')}</table>`;
  const nemesis = r.nemesis.length
    ? `<table class="grid"><tr><th>time</th><th>fault</th><th>detail</th></tr>${r.nemesis
        .map((e) => `<tr><td>${(e.time / 1000).toFixed(1)} s</td><td>${esc(e.kind)}</td><td>${esc(e.detail)}</td></tr>`)
        .join('')}</table>`
    : '<p>No fault.</p>';
  const list = (title: string, xs: string[]): string => (xs.length ? `<h2>${title}</h2><ul>${xs.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>` : '');
  const links = [
    ['timeline.html', 'timeline of every operation'],
    ['messages.svg', 'Lamport diagram of the first messages'],
    ...linearFiles.map((l) => [l.file, `key ${JSON.stringify(l.key)}: not linearizable, pictured`]),
    ['history.jsonl', 'the history'],
    ['report.json', 'the report'],
    ...nodeLogs.map((f) => [f, `${f.replace(/\.log$/, '')}'s log (stderr)`]),
  ];
  const plots = svgs
    .map((s) => `<figure class="plot" id="${esc(s.file)}">${s.svg ?? `<p>${esc(s.file)} could not be drawn (see the warnings)</p>`}<figcaption><a href="${esc(s.file)}">${esc(s.file)}</a></figcaption></figure>`)
    .join('\n');
  const body = `<h1>raftsnap cluster: <span class="verdict ${cls}" id="verdict">${esc(verdictText)}</span></h1>
<p class="mono">${esc(basename(r.resultsDir))}${r.aborted ? ' (interrupted)' : ''}</p>
<nav><ul>${links.map(([f, what]) => `<li><a href="${esc(f!)}">${esc(f!)}</a>: ${esc(what!)}</li>`).join('')}</ul></nav>
${list('Problems', r.problems)}
${list('Warnings', r.warnings)}
<h2>Report</h2>
${summary}
<h2>Nodes</h2>
${nodes}
<h2>Nemesis</h2>
${nemesis}
<h2>Plots</h2>
${plots}
${r.check.violations.length ? `<h2>Violations</h2>${r.check.violations.map((v) => `<pre class="mono">${esc(v.message)}</pre>`).join('')}` : ''}`;
  return page(`raftsnap cluster: ${verdictText}`, body, { style: 'figure.plot { margin: 8px 0 16px; } figure.plot svg { max-width: 100%; height: auto; }' });
}
