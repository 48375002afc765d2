/**
 * Snapshot transfer helpers shared by the core and its drivers: the core says which bytes to send
 * (`SnapshotSend`), the driver reads them and builds the wire message here.
 */
import { Buffer } from 'node:buffer';
import type { InstallSnapshot, SnapshotMeta, SnapshotSend } from './types.js';

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
