/**
 * The Ready loop: carries out the Raft core's output in etcd's order (core.ts, "Driver contract"):
 *   1. persist entries + hard state, sync (group commit: one sync per Ready), then store a chunk of
 *      a snapshot received from the leader;
 *   2. send messages and InstallSnapshot chunks;
 *   3. install the snapshot, then apply the committed entries (answering the requests waiting for
 *      them) and the reads confirmed;
 *   4. advance.
 * With the core's permission (Ready.sendFirst, Ready.applyFirst) steps 2 and 3 go before step 1,
 * while the fsync runs off the event loop, and inputs that need no finished Ready are stepped
 * meanwhile (`stepWhileWriting`). Knows the driver (server.ts) only by type.
 */
import { installSnapshotMessage, sameMeta } from '../raft/snapshot.js';
import type { RaftMessage, Ready } from '../raft/types.js';
import type { RaftServer, ServerProbe } from './server.js';

export class ReadyLoop {
  /** Set while a Ready's WAL fsync runs off the event loop and no input can be stepped: called on new input. */
  private wakeWriter: (() => void) | null = null;

  constructor(
    private readonly host: RaftServer,
    private readonly probe: ServerProbe | undefined,
    /** Test-only: skip persisting entries and hard state (ServerEnv.unsafeAckBeforePersist). */
    private readonly unsafe: boolean,
  ) {}

  /** True while a Ready waits for its WAL fsync and no queued input can be stepped meanwhile. */
  get waitingForWrite(): boolean {
    return this.wakeWriter !== null;
  }

  /** New input arrived: a Ready waiting for its write steps it if it may (stepWhileWriting). */
  wake(): void {
    const f = this.wakeWriter;
    this.wakeWriter = null;
    f?.();
  }

  /** Handle the core's output until it has none. Throws what a storage call threw (the driver stops). */
  async process(): Promise<void> {
    const host = this.host;
    const core = host.core!;
    const store = host.store!;
    while (core.hasReady()) {
      if (host.storeFailed()) return;
      const rd = core.ready();
      for (const m of rd.early) this.sendRaft(m);
      // What was committed and is on this node's disk already, or on a majority's (applyFirst), is
      // applied and answered without waiting for this Ready's write: while its fsync runs. A
      // leader's appends go out before it writes its own log (the core counts it toward a commit
      // only once this Ready is advanced). A follower's messages (acknowledgements of the entries
      // being written) wait for the write.
      const applied = rd.applyFirst;
      const early = rd.sendFirst && applied;
      if (early && !(await this.sendProbed(rd))) return;
      // 1. persist + sync (no fsync for a commit index alone)
      let write: Promise<void> | null = null;
      if ((rd.entries.length > 0 || rd.hardState) && !this.unsafe) {
        if (rd.entries.length > 0) store.append(rd.entries);
        if (rd.hardState) store.setHardState(rd.hardState);
        if (rd.mustSync) {
          // A synchronous fsync blocks the event loop: what this Ready sent must be on its way first.
          host.outbox.push();
          const s = store.sync();
          if (s) write = s;
        }
        if (host.stopped || host.storeFailed()) return;
      }
      // 3, first: applied while the fsync runs off the event loop (nothing of it waits for the write).
      if (applied && !this.apply(rd)) return;
      // Entries committed meanwhile may be applied during the write only if nothing this Ready
      // hands out is still to be applied after it.
      if (write) await this.stepWhileWriting(write, applied);
      if (host.stopped || host.storeFailed()) return;
      // ... then a chunk of a snapshot from the leader: written, and on the last one verified,
      // fsynced, renamed and recorded. Reported to the core, which answers the leader in a later
      // Ready, so never before this is durable; a storage error here stops the node unanswered.
      const chunk = rd.snapshotChunk;
      if (chunk) {
        let held = store.snapshots.receive(chunk.meta, chunk.size, chunk.offset, chunk.data);
        let installed = false;
        if (chunk.last && held === chunk.size) {
          installed = store.snapshots.finish(chunk.meta);
          if (!installed) {
            held = 0; // damaged: the store discarded the transfer, the leader starts again
            host.logger.warn(`${host.nodeId}: snapshot ${chunk.meta.index}/${chunk.meta.term} received from the leader failed verification; transfer restarts`);
          }
        }
        core.snapshotStored(chunk.meta, held, installed);
        // A newer snapshot than the one being loaded is now the core's (its install comes in a
        // later Ready): the load reads nothing more, before its file can be pruned.
        const snap = installed ? core.status().snapshot : null;
        if (snap && sameMeta(snap, chunk.meta)) host.state.supersededBy(chunk.meta);
      }
      // 2. send, 3. apply (what was not applied during the write)
      if (!early && !(await this.sendProbed(rd))) return;
      if (!applied && !this.apply(rd)) return;
      // 4. advance
      core.appliedTo(host.state.applied);
      core.advance();
      host.observe();
      host.snapshotter.maybeStart();
    }
    host.observe();
  }

  /**
   * While this Ready's fsync runs off the event loop, step the inputs that need no finished Ready
   * (Raft messages, client requests and forwards, ticks: dispatch.ts ORDER_FREE), in order, as
   * they arrive, and stop at the first one that does (it waits, and everything behind it). Their
   * effects stay in the core until the next Ready, taken only after this one is done, so they are
   * handled as if they had come after it: nothing they cause is sent, answered or applied before
   * this Ready's entries and hard state are durable, and the core counts the leader's own new
   * entries toward a commit only once `advance()` has marked them stable. The exceptions
   * (RaftCore.takeDuringWrite decides): when this Ready's sends went before its write, a leader's
   * new messages (the appends of the requests stepped meanwhile) go out at once too, so that the
   * followers write them while the leader does; a follower's read acknowledgements go out at
   * once; reads confirmed meanwhile are answered as soon as their read index is applied; and with
   * `applyNow`, entries committed meanwhile that are on this node's disk already or on a
   * majority's are applied (and answered). Rethrows a failed fsync.
   */
  private async stepWhileWriting(write: Promise<void>, applyNow: boolean): Promise<void> {
    const host = this.host;
    let settled = false;
    let failure: { error: unknown } | null = null;
    write.then(
      () => {
        settled = true;
        this.wake();
      },
      (e: unknown) => {
        settled = true;
        failure = { error: e };
        this.wake();
      },
    );
    for (;;) {
      while (!settled && !host.stopped) {
        const w = host.takeFreeInput();
        if (w === null) break;
        host.stats.inputsDuringWrite++;
        try {
          const r = host.handle(w);
          if (r) await r;
        } catch (e) {
          host.onHandlerError(w, e);
        }
      }
      if (host.stopped || host.storeFailed()) break;
      host.requests.askIndex();
      const early = host.core!.takeDuringWrite(applyNow);
      for (const m of early.messages) this.sendRaft(m);
      if (early.readStates.length > 0 || early.readsLost.length > 0) host.requests.readResults(early.readStates, early.readsLost);
      for (const e of early.committed) host.state.apply(e);
      if (early.messages.length > 0 || early.readStates.length > 0 || early.readsLost.length > 0 || early.committed.length > 0) host.outbox.push();
      if (settled) break;
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
      });
    }
    if (failure) throw (failure as { error: unknown }).error;
  }

  /** Step 2 of a Ready: send (and let a test probe look). False when the node stopped meanwhile. */
  private async sendProbed(rd: Ready): Promise<boolean> {
    this.send(rd);
    if (this.probe?.afterSend) {
      const p = this.probe.afterSend();
      if (p) await p;
    }
    return !this.host.storeFailed();
  }

  /**
   * Step 3 of a Ready: install its snapshot, then apply the committed entries (answering their
   * requests, and reads at their place in between). False when the node stopped meanwhile.
   */
  private apply(rd: Ready): boolean {
    const host = this.host;
    if (rd.snapshot) host.state.install(rd.snapshot);
    if (host.storeFailed()) return false;
    host.requests.readResults(rd.readStates, rd.readsLost);
    for (const e of rd.committed) host.state.apply(e);
    return true;
  }

  /** Send a Ready's messages, and its InstallSnapshot chunks with their bytes read from the local snapshot. */
  private send(rd: Ready): void {
    for (const m of rd.messages) this.sendRaft(m);
    if (rd.snapshotSends.length === 0) return;
    const snaps = this.host.store!.snapshots;
    for (const send of rd.snapshotSends) {
      const cur = snaps.current();
      // A newer snapshot was saved since this Ready: the core is told (snapshotAvailable) and
      // restarts the transfer with it.
      if (!cur || !sameMeta(cur.meta, send.meta) || cur.size !== send.size) continue;
      this.sendRaft(installSnapshotMessage(send, snaps.read(send.offset, send.length)));
    }
  }

  /** One Raft message to its peer: the body without `from` and `to` (the envelope carries them). */
  private sendRaft(m: RaftMessage): void {
    const { from: _from, to, ...rest } = m as RaftMessage & Record<string, unknown>;
    void _from;
    if (m.type === 'raft_install_snapshot' && m.offset === 0) this.host.stats.snapshotTransfersStarted++;
    this.host.outbox.send(to, rest);
  }
}
