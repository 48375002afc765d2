/**
 * The node's counters and its `get_stats` answer (the cluster runner's report polls it). Knows the
 * driver only by type.
 */
import type { RaftStatus, NodeId } from '../raft/types.js';
import type { RaftServer } from './server.js';

export interface Stats {
  elections: number;
  leaderChanges: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  /** First chunks sent: transfers started, a restarted transfer counted again. */
  snapshotTransfersStarted: number;
  /** Inputs stepped while a Ready's WAL fsync ran off the event loop (batched into the next Ready). */
  inputsDuringWrite: number;
}

export function newStats(): Stats {
  return { elections: 0, leaderChanges: 0, snapshotsTaken: 0, snapshotsInstalled: 0, snapshotTransfersStarted: 0, inputsDuringWrite: 0 };
}

/** Count elections and leader changes from one status to the next. */
export function countRoleChanges(stats: Stats, nodeId: NodeId | null, prev: { term: number; leader: NodeId | null }, st: RaftStatus): void {
  // An election this node started: it raised the term and voted for itself (a single node goes
  // from pre-candidate to leader within one Ready, so the candidate role alone would miss it).
  if (st.term > prev.term && st.votedFor === nodeId && (st.role === 'candidate' || st.role === 'leader')) stats.elections++;
  if (st.leader !== null && st.leader !== prev.leader) stats.leaderChanges++;
}

/** The body of `get_stats_ok`. */
export function statsBody(node: RaftServer): Record<string, unknown> {
  const core = node.core;
  const st: RaftStatus | null = core ? core.status() : null;
  const first = st ? st.firstIndex : 1;
  const last = st ? st.lastIndex : 0;
  const s = node.stats;
  return {
    node: node.nodeId,
    role: st ? st.role : 'uninitialized',
    term: st ? st.term : 0,
    leader: st ? st.leader : null,
    elections: s.elections,
    leader_changes: s.leaderChanges,
    snapshots_taken: s.snapshotsTaken,
    snapshots_installed: s.snapshotsInstalled,
    // Completed transfers (the follower acknowledged the last chunk), as the core counts them.
    snapshot_transfers_sent: core ? core.stats().snapshotsSent : 0,
    snapshot_transfers_started: s.snapshotTransfersStarted,
    inputs_during_write: s.inputsDuringWrite,
    log_entries: Math.max(0, last - first + 1),
    first_index: first,
    last_index: last,
    commit_index: st ? st.commit : 0,
    applied: node.applied,
    snapshot_index: st?.snapshot ? st.snapshot.index : 0,
    keys: node.kv.size,
    // A snapshot (received, or recovered at start) is still being loaded into the state machine.
    loading_snapshot: node.loadingSnapshot !== null,
    requests_in_flight: node.requests.size,
    // Reads this node answered as a follower, from its own state, with a read index from the leader.
    follower_reads: node.requests.followerReads,
    durable: node.store ? node.store.durable : false,
    ...(node.store?.stats ? node.store.stats() : {}),
    recovered_node_id: node.recoveredNodeId,
  };
}
