/**
 * Loading a stored snapshot's state into the state machine in slices: a follower installing a
 * snapshot received from its leader, and a node recovering at start. The snapshot is decoded a
 * chunk at a time (its CRC checked as the file streams past, storage's `openSnapshot`) into a
 * `KvLoad` that nothing reads; between slices of about `sliceMs` the event loop runs (heartbeats,
 * appends, client requests). The driver (server.ts) makes the loaded state the state machine's in
 * one step once the whole file has been read and checked, so no request is ever answered from a
 * half-installed state, and until then holds back every committed entry after the snapshot.
 *
 * A load can be cancelled (a newer snapshot supersedes it, the node stops or ends): it then reads
 * nothing more, releases the file and resolves null. A failure while reading rejects, and the
 * driver stops (fail-stop: it cannot vouch for a state it could not load).
 */
import { KvLoad } from '../kv/store.js';
import type { Json, SnapshotMeta } from '../raft/types.js';
import type { SnapshotStream } from './store.js';

/** Work done per turn of the event loop before yielding (ms; one chunk at least). */
export const LOAD_SLICE_MS = 5;
/** Pairs added to the load between two looks at the clock. */
const ADD_PAIRS = 1024;

export interface LoadClock {
  /** Milliseconds (the server's clock: wall clock in serve, simulated time in the simulator). */
  now(): number;
  /** Let other work run. */
  yield(): Promise<void>;
}

/** A snapshot's state, loaded whole and checked. */
export interface LoadedState {
  load: KvLoad;
  sessions: Json | undefined;
  /** Turns of the event loop the load took. */
  slices: number;
  /** The longest slice, in the clock's milliseconds. */
  longestSliceMs: number;
}

export class StateLoad {
  /** Resolves with the state once loaded, null when cancelled; rejects when reading fails. */
  readonly done: Promise<LoadedState | null>;
  private cancelled = false;

  /**
   * `into`: the state to add the pairs to (default a fresh one); a recovery that answers for the
   * keys already loaded (keyed-load.ts) makes it the state machine's while it is still filling.
   */
  constructor(
    readonly meta: SnapshotMeta,
    private readonly stream: SnapshotStream,
    private readonly clock: LoadClock,
    private readonly sliceMs = LOAD_SLICE_MS,
    readonly load: KvLoad = new KvLoad(),
  ) {
    this.done = this.run();
    // The driver attaches its handlers (maybe later, at init); an early failure is not unhandled.
    this.done.catch(() => {});
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Read nothing more: the file is released at the next turn and `done` resolves null. */
  cancel(): void {
    this.cancelled = true;
  }

  private async run(): Promise<LoadedState | null> {
    const load = this.load;
    let slices = 0;
    let longest = 0;
    // A decoded part (up to 8,192 pairs) not yet all in the load: a turn decodes the next part, or
    // adds pairs until the slice is spent, so that neither adds to the other's pause.
    let pending: { keys: Json[]; values: Json[] } | null = null;
    let at = 0;
    try {
      // The Ready (or the recovery) that started the load finishes first.
      await this.clock.yield();
      for (;;) {
        if (this.cancelled) return null;
        const t0 = this.clock.now();
        slices++;
        let first = true;
        do {
          if (pending === null) {
            // Decoding the next part is the longest step: it only ever begins a turn, so that a turn
            // is one decode or a few adds, never adds and then a decode.
            if (!first) break;
            pending = this.stream.next();
            at = 0;
            if (pending === null) {
              longest = Math.max(longest, this.clock.now() - t0);
              return { load, sessions: this.stream.sessions, slices, longestSliceMs: longest };
            }
          } else {
            const end = Math.min(at + ADD_PAIRS, pending.keys.length);
            load.add(pending.keys, pending.values, at, end);
            at = end;
            if (at >= pending.keys.length) pending = null;
          }
          first = false;
        } while (this.clock.now() - t0 < this.sliceMs);
        longest = Math.max(longest, this.clock.now() - t0);
        await this.clock.yield();
      }
    } finally {
      this.stream.close();
    }
  }
}
