/**
 * Snapshot transfer (InstallSnapshot). Sending: the core says which bytes to send
 * (`SnapshotSend`), the driver reads them and builds the wire message here. Receiving: a
 * follower's `SnapshotReceiver` decides which chunk goes to the driver to store and what the
 * leader is told.
 */
import { Buffer } from 'node:buffer';
import type { InstallSnapshot, NodeId, SnapshotChunk, SnapshotMeta, SnapshotSend } from './types.js';

export function copyMeta(m: SnapshotMeta): SnapshotMeta {
  return { index: m.index, term: m.term, config: [...m.config] };
}

/** The same snapshot: a snapshot is named by its last included index and term. */
export function sameMeta(a: { index: number; term: number }, b: { index: number; term: number }): boolean {
  return a.index === b.index && a.term === b.term;
}

/** Orders snapshots as the stores do (index, then term): negative when `a` is older than `b`. */
export function compareMeta(a: SnapshotMeta, b: SnapshotMeta): number {
  return a.index - b.index || a.term - b.term;
}

/**
 * The InstallSnapshot message for `send` with its bytes, read by the driver from the local
 * snapshot. Throws when `bytes` is not exactly the requested length: the snapshot file is shorter
 * than the size the driver reported, a broken invariant that must stop the node.
 */
export function installSnapshotMessage(send: SnapshotSend, bytes: Uint8Array): InstallSnapshot {
  if (bytes.length !== send.length) {
    throw new Error(
      `snapshot ${send.meta.index}/${send.meta.term}: read ${bytes.length} bytes at offset ${send.offset}, expected ${send.length} (file of ${send.size} bytes)`,
    );
  }
  return {
    type: 'raft_install_snapshot', from: send.from, to: send.to, term: send.term,
    meta: { ...send.meta, config: [...send.meta.config] }, size: send.size, offset: send.offset,
    data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), done: send.done,
  };
}

/** A chunk handed to the driver to store, with the leader that sent it and the term then. */
export interface StoredChunk {
  chunk: SnapshotChunk;
  /** The reply goes to this leader only if it is still the leader in this term. */
  from: NodeId;
  term: number;
}

/**
 * A follower receiving a leader's snapshot, chunk by chunk. One chunk at a time is with the driver
 * to store; the leader's reply waits until the driver reports it stored (the last one: verified
 * and durable). The receiver remembers how many bytes of which snapshot from which leader are
 * held, so a chunk at another offset (a lost one, or a leader that restarted its transfer at 0)
 * is answered with that count and the leader resumes there. Pure: no I/O, the bytes are the driver's.
 */
export class SnapshotReceiver {
  /** The snapshot being received, as far as the driver reported it stored. */
  private receiving: { from: NodeId; meta: SnapshotMeta; size: number; held: number } | null = null;
  /** The chunk with the driver, or waiting to be handed to it (`handedOut` false). */
  private storing: (StoredChunk & { handedOut: boolean }) | null = null;

  /**
   * A chunk `m` from this node's leader in `term`, of a snapshot newer than what the node holds.
   * Returns the byte count to answer with at once (the chunk does not continue what is held, or
   * runs past the snapshot's size), or null: the chunk waits for `take`, or one is with the driver
   * already and this one is dropped (the leader, hearing nothing, sends it again).
   */
  offer(m: InstallSnapshot, term: number): number | null {
    if (this.storing) return null;
    const r = this.receiving;
    const held = r && r.from === m.from && sameMeta(r.meta, m.meta) && r.size === m.size ? r.held : 0;
    // Only the chunk that continues what is held is stored. Offset 0 starts a transfer afresh unless
    // part of this very snapshot from this leader is held already (it restarted the transfer, e.g.
    // after its own restart): then, as for a lost chunk, the reply says where to resume.
    if (m.offset !== held) return held;
    const data = Buffer.from(m.data, 'base64');
    if (m.offset + data.length > m.size) return held;
    this.storing = {
      chunk: { meta: copyMeta(m.meta), size: m.size, offset: m.offset, data, last: m.done && m.offset + data.length === m.size },
      from: m.from,
      term,
      handedOut: false,
    };
    return null;
  }

  /** A chunk waits to be handed to the driver. */
  get waiting(): boolean {
    return this.storing !== null && !this.storing.handedOut;
  }

  /** The chunk the driver is to store now (then it is with the driver), or null. */
  take(): SnapshotChunk | null {
    if (!this.storing || this.storing.handedOut) return null;
    this.storing.handedOut = true;
    return this.storing.chunk;
  }

  /**
   * The driver stored the handed-out chunk of `meta` and holds `held` bytes of that snapshot
   * (`installed`: it was the last chunk and the snapshot is verified and durable). Returns that
   * chunk and its sender. Throws when no chunk of `meta` was handed out, or the report is impossible.
   */
  stored(meta: SnapshotMeta, held: number, installed: boolean): StoredChunk {
    const s = this.storing;
    if (!s || !s.handedOut || !sameMeta(s.chunk.meta, meta)) {
      throw new Error(`raft: snapshotStored(${meta.index}/${meta.term}) but no chunk of that snapshot was handed out to store`);
    }
    const c = s.chunk;
    if (!Number.isSafeInteger(held) || held < 0 || held > c.size) throw new RangeError(`raft: snapshotStored held ${held} bytes of a ${c.size}-byte snapshot`);
    if (installed && !c.last) throw new Error(`raft: snapshotStored reports ${meta.index}/${meta.term} installed after a chunk that was not the last`);
    this.storing = null;
    this.receiving = installed || held === 0 ? null : { from: s.from, meta: c.meta, size: c.size, held };
    return { chunk: c, from: s.from, term: s.term };
  }
}
