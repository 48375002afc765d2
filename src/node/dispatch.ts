/**
 * What each input message means: the kinds of message the node takes (client requests, Raft
 * traffic, a follower's forwards and read-index requests, init, get_stats, control messages), the
 * handler each goes to, and the reply body a client request gets. Knows the driver (server.ts)
 * only by type.
 */
import type { KvCommand } from '../kv/index.js';
import { RAFT_MESSAGE_TYPES, type Json, type RaftMessage } from '../raft/types.js';
import { CONTROL_TYPES, handleControl } from './control.js';
import { onInit } from './init.js';
import { ErrorCode, ProtocolError, validate, type Body, type Envelope } from './protocol.js';
import type { Outcome } from './requests.js';
import type { RaftServer } from './server.js';

/** Maelstrom's lin-kv requests. */
export const CLIENT_TYPES: ReadonlySet<string> = new Set(['read', 'write', 'cas']);

/**
 * Messages that may be batched into one Ready with the ones around them, and stepped while a
 * Ready's write is in flight. Every other message (init, get_stats, control messages) observes the
 * effects of everything before it: the pending Ready is finished first.
 */
export const ORDER_FREE: ReadonlySet<string> = new Set([
  ...CLIENT_TYPES, ...RAFT_MESSAGE_TYPES, 'raft_forward', 'raft_forward_reply', 'raft_read_index', 'raft_read_index_reply',
]);

/** The replies this node waits for besides Raft's own (which carry no in_reply_to). */
const AWAITED_REPLIES: ReadonlySet<string> = new Set(['raft_forward_reply', 'raft_read_index_reply']);

/** Hand one message to its handler. Throws a ProtocolError for a request that gets an error reply. */
export function dispatch(node: RaftServer, msg: Envelope): void | Promise<void> {
  const { src, body } = msg;
  const type = body.type;
  // Once init has named this node, a message for another node id is not ours to act on or answer.
  if (node.nodeId !== null && msg.dest !== node.nodeId) {
    node.logger.warn(`dropping ${type} from ${src}: addressed to ${msg.dest}, not to this node (${node.nodeId})`);
    return;
  }
  // A reply to nothing this node waits for: the only replies it expects are raft_forward_reply
  // and raft_read_index_reply (Raft's replies are messages of their own, without in_reply_to).
  // Never answered.
  if (type === 'error' || (body.in_reply_to !== undefined && !AWAITED_REPLIES.has(type) && !RAFT_MESSAGE_TYPES.has(type))) {
    node.logger.warn(`dropping ${type} from ${src} (in reply to ${String(body.in_reply_to)}): a reply to nothing this node asked`);
    return;
  }
  if (type === 'init') return onInit(node, msg);
  if (!node.core) {
    if (RAFT_MESSAGE_TYPES.has(type) || type.startsWith('raft_')) return; // a peer ahead of us; it retries
    throw new ProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, 'node not initialized yet (expected init first)');
  }
  if (RAFT_MESSAGE_TYPES.has(type)) return stepRaft(node, msg);
  if (CLIENT_TYPES.has(type)) return node.requests.submitClient(msg, clientCommand(body), replyBody);
  switch (type) {
    case 'raft_forward':
      return node.requests.onForward(msg);
    case 'raft_forward_reply':
      return node.requests.onForwardReply(msg);
    case 'raft_read_index':
      return node.requests.onReadIndex(msg);
    case 'raft_read_index_reply':
      return node.requests.onReadIndexReply(msg);
    case 'get_stats':
      node.outbox.reply(src, body.msg_id, { type: 'get_stats_ok', ...node.statsBody() });
      return;
  }
  if (CONTROL_TYPES.has(type)) return handleControl(node, msg);
  throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${JSON.stringify(type)}`);
}

/** A message from a peer's Raft core, stepped into ours. */
function stepRaft(node: RaftServer, msg: Envelope): void {
  const b = msg.body as Record<string, unknown>;
  if (!Number.isSafeInteger(b['term'])) {
    node.logger.warn(`dropping ${msg.body.type} from ${msg.src}: no term`);
    return;
  }
  // The body itself becomes the message (no copy; the core ignores msg_id and other extra fields).
  b['from'] = msg.src;
  b['to'] = node.nodeId;
  node.core!.step(b as unknown as RaftMessage);
}

/** The reply body for a client request given its outcome. */
export function replyBody(op: string, o: Outcome): Record<string, unknown> {
  if (o.kind === 'error') return { type: 'error', code: o.code, text: o.text };
  const r = o.result;
  if (!r.ok) return { type: 'error', code: r.code, text: r.text };
  if (op === 'read') return { type: 'read_ok', value: r.value === undefined ? null : r.value };
  return { type: `${op}_ok` };
}

/** Validate a lin-kv request body and turn it into a log command. */
export function clientCommand(body: Body): KvCommand {
  const b = body as Record<string, unknown>;
  switch (body.type) {
    case 'read':
      validate(b, { key: 'any' });
      return { op: 'read', key: b['key'] as Json };
    case 'write':
      validate(b, { key: 'any', value: 'any' });
      return { op: 'write', key: b['key'] as Json, value: b['value'] as Json };
    case 'cas': {
      validate(b, { key: 'any', from: 'any', to: 'any' }, { create_if_not_exists: 'bool' });
      const cmd: KvCommand = { op: 'cas', key: b['key'] as Json, from: b['from'] as Json, to: b['to'] as Json };
      if (b['create_if_not_exists'] === true) cmd.create_if_not_exists = true;
      return cmd;
    }
  }
  throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${body.type}`);
}
