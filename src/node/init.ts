/**
 * `init` and recovery: the node learns its id and the cluster's members, opens and recovers its
 * store (at start already for --data-dir), checks the directory's recorded owner and members, and
 * hands the recovered state to the driver (`RaftServer.begin`). Knows the driver only by type.
 */
import { ErrorCode, ProtocolError, validate, type Envelope } from './protocol.js';
import { wasReported } from './reported.js';
import type { RaftServer } from './server.js';
import type { NodeStore, RecoveredState } from './store.js';

/** The same set in another order is the same membership. */
function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
}

function list(ids: readonly string[]): string {
  return `[${ids.join(', ')}]`;
}

export async function onInit(node: RaftServer, msg: Envelope): Promise<void> {
  const { src, body } = msg;
  const out = node.outbox;
  const log = node.logger;
  validate(body, { node_id: 'string', node_ids: 'string[]' });
  const nodeId = body['node_id'] as string;
  const nodeIds = body['node_ids'] as string[];
  if (!nodeIds.includes(nodeId)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, 'node_ids must include node_id');
  const twice = nodeIds.find((id, i) => nodeIds.indexOf(id) !== i);
  if (twice !== undefined) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `node_ids names ${twice} twice`);
  // Membership is fixed: the members of the first init (recorded in a data directory) are the
  // cluster's for good.
  if (node.core) {
    if (nodeId !== node.nodeId) throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `already initialized as ${node.nodeId}`);
    if (!sameMembers(nodeIds, node.nodeIds)) {
      const text = `init lists the members ${list(nodeIds)}, but this node runs in the cluster ${list(node.nodeIds)} (membership is fixed at the first init); refused, nothing changed`;
      log.warn(`${node.nodeId}: ${text}`);
      throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, text);
    }
    out.reply(src, body.msg_id, { type: 'init_ok' });
    return;
  }
  node.named(nodeId, nodeIds);
  // In memory there is nothing to recover and nothing that can fail: answer at once and load the
  // storage code afterwards (messages behind `init` wait for it in the queue). With a directory,
  // recovery comes first so that a broken or foreign directory is refused in the answer to init.
  const durable = node.options.dataDir !== null || node.options.dataRoot !== null;
  if (!durable) out.reply(src, body.msg_id, { type: 'init_ok' });
  let store: NodeStore;
  let rec: RecoveredState;
  /** Why the directory refuses this init (it records other members), or null. */
  let refusal: string | null = null;
  try {
    ({ store, rec } = await node.openAndRecover(nodeId));
    if (rec.nodeId !== null && rec.nodeId !== nodeId) {
      throw new Error(`data directory ${store.where} belongs to node ${rec.nodeId}, not ${nodeId}`);
    }
    const recorded = rec.members ?? null;
    if (recorded !== null && !sameMembers(recorded, nodeIds)) {
      refusal =
        `data directory ${store.where} records the members ${list(recorded)}, but init lists ${list(nodeIds)}: ` +
        'refused; this node does not join a cluster of other members (restart it with the recorded node_ids, or build a directory for the new cluster with raftsnap restore --config)';
    } else {
      if (store.durable && rec.nodeId !== nodeId) await store.setNodeId(nodeId);
      if (store.durable && recorded === null) await store.setMembers?.(nodeIds);
    }
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    // A failed start of --data-dir has said it already (main.ts): one FATAL line per failure.
    if (!wasReported(e)) log.warn(`FATAL: cannot open this node's storage: ${err.message}`);
    if (durable) out.error(src, body.msg_id, ErrorCode.CRASH, `cannot open storage: ${err.message}`);
    node.notStarted(err, null, false);
    return;
  }
  if (refusal !== null) {
    // A definite answer (nothing changed), then nothing more: no vote, no answer; the host exits 1.
    log.warn(`FATAL: ${refusal}`);
    out.error(src, body.msg_id, ErrorCode.PRECONDITION_FAILED, refusal);
    node.notStarted(new Error(refusal), store, true);
    return;
  }
  node.begin(store, rec);
  if (store.durable || rec.snapshot || rec.entries.length > 0) {
    log.info(
      `${nodeId}: recovered from ${store.where}: snapshot ${rec.snapshot ? `${rec.snapshot.meta.index}/${rec.snapshot.meta.term}` : 'none'}, ` +
        `${rec.entries.length} log entries, term ${rec.hardState.term}, commit ${rec.hardState.commit}`,
    );
  }
  if (durable) out.reply(src, body.msg_id, { type: 'init_ok' });
  node.startTicking();
}
