/**
 * The control messages of the snapshot exercise (see ../shared/guides/maelstrom-protocol.md and
 * docs/SERVE.md for every edge case decided here). They act on this node alone and are meant
 * for single-node transcripts and tests; they go through the same core, store and Ready loop as
 * everything else, so their effects are persisted and survive restarts.
 *
 * The ones that replace the state machine or the log outside Raft (REPLACING_TYPES) are refused
 * with error 10 on a node whose cluster has more than one member: on a leader they would break
 * Log Matching (a local rule-7 restore shrinks its log below its followers' match indexes, and new
 * proposals reuse those indexes), on a follower they would make its state differ from the others'.
 */
import { canonicalJson } from '../kv/keys.js';
import { KvStore, asKvCommand, type KvCommand, type KvResult } from '../kv/store.js';
import type { Entry, Json, SnapshotMeta } from '../raft/types.js';
import { ErrorCode, ProtocolError, validate, type Envelope } from './protocol.js';
import { clientValueProblem } from './wire-limits.js';
import type { RaftServer } from './server.js';

export const CONTROL_TYPES: ReadonlySet<string> = new Set([
  'seed_state',
  'take_snapshot',
  'install_snapshot',
  'get_state',
  'get_log_info',
  'apply_entries',
  'seed_committed_log',
]);

/** Control messages that rewrite the state machine or the log outside Raft: single-node clusters only. */
export const REPLACING_TYPES: ReadonlySet<string> = new Set(['seed_state', 'install_snapshot', 'apply_entries', 'seed_committed_log']);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A command of a control-message entry: the exercise's put/get, or lin-kv read/write/cas. */
export function controlCommand(v: unknown, where: string): KvCommand {
  if (!isObject(v)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `${where}: command must be an object`);
  if (!('key' in v)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `${where}: command needs a "key"`);
  // The limits of a client request (docs/SERVE.md, "Limits on input"; docs/FORMAT.md, "Limits").
  const p = clientValueProblem(v);
  if (p) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `${where}: ${p}`);
  if (v['op'] === 'put') {
    if (!('value' in v)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `${where}: put needs a "value"`);
    return { op: 'write', key: v['key'] as Json, value: v['value'] as Json };
  }
  if (v['op'] === 'get') return { op: 'read', key: v['key'] as Json };
  const c = asKvCommand(v as Json);
  if (!c) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `${where}: op must be put, get, read, write or cas`);
  return c;
}

/**
 * The pairs of a control message's `state`, each within the limits of a client request (key and
 * value at most MAX_VALUE_DEPTH deep and MAX_VALUE_CHARS as JSON): what the node could not have
 * taken from a client, it does not take from a control message either, and every snapshot it
 * writes can be read back under the same limits (docs/FORMAT.md, "Limits").
 */
function statePairs(state: Record<string, Json>): Array<[Json, Json]> {
  const pairs = Object.entries(state);
  for (const [k, v] of pairs) {
    const p = clientValueProblem({ key: k, value: v });
    if (p) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `state key ${JSON.stringify(k).slice(0, 40)}: ${p}`);
  }
  return pairs;
}

/** Validate `entries: [{index, term, command}]`: indexes consecutive, terms never decreasing. */
function parseEntries(raw: unknown): Entry[] {
  if (!Array.isArray(raw)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, 'field "entries" must be an array');
  const out: Entry[] = [];
  raw.forEach((e, i) => {
    if (!isObject(e)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `entries[${i}] must be an object`);
    validate(e, { index: 'nonneg', term: 'nonneg', command: 'object' });
    const index = e['index'] as number;
    const term = e['term'] as number;
    if (index < 1) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `entries[${i}].index must be at least 1`);
    const prev = out[out.length - 1];
    if (prev && index !== prev.index + 1) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `entries[${i}].index must be ${prev.index + 1}`);
    if (prev && term < prev.term) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `entries[${i}].term is lower than the one before`);
    out.push({ index, term, data: controlCommand(e['command'], `entries[${i}]`) as unknown as Json });
  });
  return out;
}

/** The state as a JSON object; keys that are not strings are written as their canonical JSON. */
export function stateObject(kv: KvStore): Record<string, Json> {
  const o: Record<string, Json> = {};
  for (const [k, v] of kv.entries()) o[typeof k === 'string' ? k : canonicalJson(k)] = v;
  return o;
}

export async function handleControl(node: RaftServer, msg: Envelope): Promise<void> {
  const { src, body } = msg;
  const b = body as Record<string, unknown>;
  if (REPLACING_TYPES.has(body.type) && node.nodeIds.length > 1) {
    // Definite: nothing was changed.
    throw new ProtocolError(
      ErrorCode.NOT_SUPPORTED,
      `${body.type} is a single-node grader message: it replaces this node's state or log outside Raft, which a cluster of ` +
        `${node.nodeIds.length} members cannot allow (it would break the replicas' agreement); refused, nothing changed`,
    );
  }
  const core = node.core!;
  const store = node.store!;
  const out = node.outbox;
  const reply = (payload: Record<string, unknown>): void => {
    out.reply(src, body.msg_id, payload);
  };

  /** Make the node's state exactly `pairs` at `meta` (seed_state, install_snapshot). */
  const resetTo = async (meta: SnapshotMeta, pairs: Array<[Json, Json]>): Promise<void> => {
    const tmp = KvStore.fromEntries(pairs);
    await node.snapshotter.settle();
    const { size } = await store.saveSnapshot(meta, tmp.freeze());
    core.snapshotAvailable(meta, size);
    core.restoreSnapshot(meta);
    node.resetStateMachine(meta, pairs);
    await node.processReady();
  };

  switch (body.type) {
    case 'seed_state': {
      validate(b, { state: 'object', commit_index: 'nonneg', term: 'nonneg' });
      const index = b['commit_index'] as number;
      const term = b['term'] as number;
      if (index < 1) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, 'commit_index must be at least 1');
      if (index < node.applied) {
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `node has already applied through ${node.applied}; cannot seed at ${index}`);
      }
      const pairs = statePairs(b['state'] as Record<string, Json>);
      await resetTo({ index, term, config: [...node.nodeIds] }, pairs);
      reply({ type: 'seed_state_ok' });
      return;
    }

    case 'install_snapshot': {
      validate(b, { snapshot_index: 'nonneg', snapshot_term: 'nonneg', state: 'object' });
      const index = b['snapshot_index'] as number;
      const term = b['snapshot_term'] as number;
      if (index <= node.applied) {
        reply({ type: 'install_snapshot_ok', applied: false, new_last_applied: node.applied });
        return;
      }
      const pairs = statePairs(b['state'] as Record<string, Json>);
      await resetTo({ index, term, config: [...node.nodeIds] }, pairs);
      node.stats.snapshotsInstalled++;
      reply({ type: 'install_snapshot_ok', applied: true, new_last_applied: node.applied });
      return;
    }

    case 'take_snapshot': {
      if ('up_to_index' in b) {
        validate(b, { up_to_index: 'nonneg' });
        const upTo = b['up_to_index'] as number;
        const cur = core.status().snapshot;
        if (upTo <= (cur ? cur.index : 0)) {
          reply({ type: 'snapshot_ok', last_included_index: cur ? cur.index : 0, last_included_term: cur ? cur.term : 0 });
          return;
        }
        if (upTo > node.applied) {
          throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `cannot snapshot at ${upTo}: only applied through ${node.applied}`);
        }
        const meta = await snapshotAt(node, upTo);
        reply({ type: 'snapshot_ok', last_included_index: meta.index, last_included_term: meta.term });
        return;
      }
      if ('threshold' in b) {
        validate(b, { threshold: 'nonneg' });
        const threshold = b['threshold'] as number;
        const st = core.status();
        const inLog = Math.max(0, st.lastIndex - st.firstIndex + 1);
        const cur = st.snapshot;
        if (inLog >= threshold && node.applied > (cur ? cur.index : 0)) {
          const r = await snapshotAtWithSize(node, node.applied);
          reply({
            type: 'take_snapshot_ok',
            snapshot_index: r.meta.index,
            snapshot_term: r.meta.term,
            state_size_bytes: r.size,
            log_entries_trimmed: r.trimmed,
          });
          return;
        }
        const held = store.snapshots.current();
        reply({
          type: 'take_snapshot_ok',
          snapshot_index: cur ? cur.index : 0,
          snapshot_term: cur ? cur.term : 0,
          state_size_bytes: held ? held.size : 0,
          log_entries_trimmed: 0,
        });
        return;
      }
      throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, 'take_snapshot needs "up_to_index" or "threshold"');
    }

    case 'get_state':
      reply({ type: 'get_state_ok', state: stateObject(node.kv), last_applied: node.applied });
      return;

    case 'get_log_info': {
      const st = core.status();
      reply({
        type: 'get_log_info_ok',
        first_index: st.firstIndex,
        last_index: st.lastIndex,
        snapshot_index: st.snapshot ? st.snapshot.index : 0,
        total_entries: Math.max(0, st.lastIndex - st.firstIndex + 1),
      });
      return;
    }

    case 'apply_entries': {
      validate(b, { entries: 'array' });
      const entries = parseEntries(b['entries']).filter((e) => e.index > node.applied);
      if (entries.length > 0 && entries[0]!.index !== node.applied + 1) {
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `entries must continue at index ${node.applied + 1}, got ${entries[0]!.index}`);
      }
      const results: Array<{ index: number; result: Json }> = [];
      // Each entry is a request of the table (requests.ts), answered when applied.
      const watched = entries.map((e) => {
        const cmd = e.data as unknown as KvCommand;
        return node.requests.watchApply(e.index, e.term, cmd, (o) => {
          results.push({ index: e.index, result: controlResult(cmd, o.kind === 'result' ? o.result : null) });
        });
      });
      if (entries.length > 0) {
        core.seedCommitted(entries, entries[entries.length - 1]!.index);
        await node.processReady();
      }
      for (const w of watched) node.requests.forget(w);
      reply({ type: 'apply_entries_ok', results, last_applied: node.applied });
      return;
    }

    case 'seed_committed_log': {
      validate(b, { entries: 'array', commit_index: 'nonneg' });
      const all = parseEntries(b['entries']);
      const commitIndex = b['commit_index'] as number;
      const entries = all.filter((e) => e.index > node.applied);
      const last = all.length > 0 ? all[all.length - 1]!.index : node.applied;
      if (commitIndex > last) {
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `commit_index ${commitIndex} is beyond the last entry ${last}`);
      }
      if (entries.length > 0 && entries[0]!.index !== node.applied + 1) {
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `entries must continue at index ${node.applied + 1}, got ${entries[0]!.index}`);
      }
      if (entries.length > 0) {
        core.seedCommitted(entries, Math.max(commitIndex, node.applied));
        await node.processReady();
      }
      reply({ type: 'seed_committed_log_ok' });
      return;
    }
  }
  throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${body.type}`);
}

/** The `result` of one applied control entry: the value for get/read, "ok" for put/write/cas. */
function controlResult(cmd: KvCommand, r: KvResult | null): Json {
  if (!r) return null;
  if (!r.ok) return { error: r.code, text: r.text };
  if (cmd.op === 'read') return r.value === undefined ? null : r.value;
  return 'ok';
}

async function snapshotAt(node: RaftServer, index: number): Promise<SnapshotMeta> {
  return (await snapshotAtWithSize(node, index)).meta;
}

/**
 * Snapshot the state as of `index` (applied >= index > current snapshot index). At the applied
 * index the live store is frozen; below it, the state is rebuilt from the current snapshot plus the
 * log up to `index`. Control snapshots keep no trailing entries (the exercise's semantics).
 */
async function snapshotAtWithSize(node: RaftServer, index: number): Promise<{ meta: SnapshotMeta; size: number; trimmed: number }> {
  const core = node.core!;
  const term = core.termAt(index);
  if (term === undefined) throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `no log entry at ${index}`);
  const meta: SnapshotMeta = { index, term, config: [...node.nodeIds] };
  let view;
  if (index === node.applied) {
    view = node.kv.freeze();
  } else {
    const cur = core.status().snapshot;
    const base = cur ? await node.store!.loadSnapshot(cur) : { pairs: [] };
    const tmp = KvStore.fromEntries(base.pairs, base.sessions);
    const from = cur ? cur.index + 1 : 1;
    const entries = core.entries(from, index);
    if (entries.length !== index - from + 1) {
      throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `log entries ${from}..${index} are no longer available`);
    }
    for (const e of entries) tmp.applyEntry(e.data, e.index);
    view = tmp.freeze();
  }
  const { size, trimmed } = await node.snapshotter.takeNow(meta, view, 0);
  return { meta, size, trimmed };
}
