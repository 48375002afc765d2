/**
 * A deterministic mini-network for Raft core tests: several cores, an in-memory snapshot store and
 * "stable storage" per node, a FIFO message queue with filters (drop, partition), and a tiny state
 * machine (the list of applied non-null entries) whose snapshots are JSON bytes. The harness plays
 * the driver: it persists each Ready, stores its snapshot chunk and reports it (`snapshotStored`),
 * reads the bytes of its snapshot sends, and tells the core of new local snapshots.
 */
import { Random } from '../../src/cluster/random.js';
import { RaftCore } from '../../src/raft/core.js';
import { installSnapshotMessage } from '../../src/raft/snapshot.js';
import type { Entry, HardState, InstallSnapshot, Json, NodeId, RaftConfig, RaftMessage, ReadState, Ready, SnapshotMeta, SnapshotStore } from '../../src/raft/types.js';

/** The cluster runner's seeded generator (mulberry32) as a plain function. */
export function mulberry32(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

const sameMeta = (a: SnapshotMeta, b: SnapshotMeta) => a.index === b.index && a.term === b.term;

/** Bytes in Buffers; receive/finish follow the SnapshotStore contract (the driver's store). */
export class MemSnapshots implements SnapshotStore {
  cur: { meta: SnapshotMeta; bytes: Buffer } | null = null;
  partial: { meta: SnapshotMeta; size: number; chunks: Buffer[]; held: number } | null = null;
  /** Finishes that report a damaged snapshot (bad checksum). */
  failFinish = 0;
  /** Receives that throw (a failed write: the driver stops the node). */
  failReceive = 0;
  receives: Array<{ offset: number; len: number; held: number }> = [];
  finishes = 0;

  current(): { meta: SnapshotMeta; size: number } | null {
    return this.cur ? { meta: this.cur.meta, size: this.cur.bytes.length } : null;
  }
  read(offset: number, length: number): Uint8Array {
    return this.cur!.bytes.subarray(offset, offset + length);
  }
  receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
    if (this.failReceive > 0) {
      this.failReceive--;
      throw new Error('EIO: write of snapshot receive file failed');
    }
    let held: number;
    if (offset === 0) {
      this.partial = { meta, size, chunks: [Buffer.from(data)], held: data.length };
      held = data.length;
    } else if (this.partial && sameMeta(this.partial.meta, meta) && offset === this.partial.held && offset + data.length <= size) {
      this.partial.chunks.push(Buffer.from(data));
      this.partial.held += data.length;
      held = this.partial.held;
    } else {
      held = this.partial && sameMeta(this.partial.meta, meta) ? this.partial.held : 0;
    }
    this.receives.push({ offset, len: data.length, held });
    return held;
  }
  finish(meta: SnapshotMeta): boolean {
    this.finishes++;
    const p = this.partial;
    this.partial = null;
    if (this.failFinish > 0) {
      this.failFinish--;
      return false;
    }
    if (!p || !sameMeta(p.meta, meta) || p.held !== p.size) return false;
    this.cur = { meta, bytes: Buffer.concat(p.chunks) };
    return true;
  }
  save(meta: SnapshotMeta, bytes: Buffer): void {
    this.cur = { meta, bytes };
  }
}

/**
 * The driver's step 1 for a Ready's snapshot chunk: store it in `snaps` (on the last one verify and
 * install it) and report the result to the core. Returns false when there was no chunk.
 */
export function storeChunk(core: RaftCore, snaps: MemSnapshots, rd: Ready): boolean {
  const c = rd.snapshotChunk;
  if (!c) return false;
  let held = snaps.receive(c.meta, c.size, c.offset, c.data);
  let installed = false;
  if (c.last && held === c.size) {
    installed = snaps.finish(c.meta);
    if (!installed) held = 0;
  }
  core.snapshotStored(c.meta, held, installed);
  return true;
}

/** The driver's step 2 for a Ready's snapshot sends: the messages with their bytes read from `snaps`. */
export function readSends(snaps: MemSnapshots, rd: Ready): InstallSnapshot[] {
  const out: InstallSnapshot[] = [];
  for (const s of rd.snapshotSends) {
    const cur = snaps.cur;
    if (!cur || !sameMeta(cur.meta, s.meta) || cur.bytes.length !== s.size) continue; // replaced since the Ready
    out.push(installSnapshotMessage(s, cur.bytes.subarray(s.offset, s.offset + s.length)));
  }
  return out;
}

export interface SmState {
  index: number;
  values: Json[];
}

export interface SimNode {
  id: NodeId;
  core: RaftCore;
  snaps: MemSnapshots;
  stored: { hs: HardState; snapshot: SnapshotMeta | null; entries: Entry[] };
  sm: SmState;
  readies: Ready[];
  /** ReadIndex reads confirmed (Ready.readStates) and lost (Ready.readsLost), in order. */
  readStates: ReadState[];
  readsLost: number[];
}

export const defaultConfig = {
  electionTicks: 10,
  heartbeatTicks: 2,
  preVote: true,
  checkQuorum: true,
  maxEntriesPerAppend: 4,
  maxInflight: 3,
  snapshotChunkSize: 16,
};

export type Opts = Partial<Omit<RaftConfig, 'id' | 'peers' | 'random' | 'localSnapshot'>>;

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  queue: RaftMessage[] = [];
  /** Every message released by a Ready, in order. */
  trace: RaftMessage[] = [];
  /** Return false to drop a message. */
  filter: (m: RaftMessage) => boolean = () => true;
  private cut = new Set<string>();
  /** Every (term -> leader) seen. */
  leadersByTerm = new Map<number, Set<NodeId>>();
  /** Applied entries by index, across nodes (safety check). */
  appliedAt = new Map<number, string>();
  readonly random: () => number;

  constructor(
    readonly ids: NodeId[],
    readonly opts: Opts = {},
    seed = 1,
    init?: (id: NodeId) => { hs?: HardState; entries?: Entry[]; snapshot?: SnapshotMeta | null; snapBytes?: Buffer },
  ) {
    this.random = mulberry32(seed);
    for (const id of ids) {
      const i = init?.(id) ?? {};
      this.nodes.set(id, this.makeNode(id, i.hs, i.entries, i.snapshot ?? null, i.snapBytes));
    }
  }

  private makeNode(id: NodeId, hs?: HardState, entries?: Entry[], snapshot?: SnapshotMeta | null, snapBytes?: Buffer, snapCur?: MemSnapshots['cur']): SimNode {
    const snaps = new MemSnapshots();
    const sm: SmState = { index: 0, values: [] };
    if (snapshot && snapBytes) {
      snaps.save(snapshot, snapBytes);
      Object.assign(sm, JSON.parse(snapBytes.toString()) as SmState);
    }
    if (snapCur !== undefined) snaps.cur = snapCur;
    const seed = Math.floor(this.random() * 2 ** 31);
    const core = new RaftCore(
      { ...defaultConfig, ...this.opts, id, peers: this.ids, random: mulberry32(seed), localSnapshot: snaps.current() },
      { hardState: hs ?? { term: 0, votedFor: null, commit: 0 }, snapshot: snapshot ?? null, entries: entries ?? [], applied: sm.index },
    );
    return {
      id, core, snaps, sm, readies: [], readStates: [], readsLost: [],
      stored: { hs: hs ?? { term: 0, votedFor: null, commit: 0 }, snapshot: snapshot ?? null, entries: (entries ?? []).slice() },
    };
  }

  node(id: NodeId): SimNode {
    return this.nodes.get(id)!;
  }
  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Run the Ready loop of one node until it is idle. */
  process(id: NodeId): void {
    const n = this.node(id);
    while (n.core.hasReady()) {
      const rd = n.core.ready();
      n.readies.push(rd);
      // 1. persist
      if (rd.snapshot) {
        n.stored.snapshot = rd.snapshot;
        n.stored.entries = [];
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0]!.index;
        n.stored.entries = n.stored.entries.filter((e) => e.index < first).concat(rd.entries);
      }
      if (rd.hardState) n.stored.hs = rd.hardState;
      if (this.holdChunks && rd.snapshotChunk) {
        this.held.push({ id, rd });
      } else {
        storeChunk(n.core, n.snaps, rd);
      }
      // 2. send
      for (const m of [...rd.early, ...rd.messages, ...readSends(n.snaps, rd)]) {
        this.trace.push(m);
        this.queue.push(m);
      }
      // 3. apply
      if (rd.snapshot) {
        const cur = n.snaps.cur!;
        if (!sameMeta(cur.meta, rd.snapshot)) throw new Error(`${id}: Ready.snapshot is not the store's current snapshot`);
        n.sm = JSON.parse(cur.bytes.toString()) as SmState;
        if (n.sm.index !== rd.snapshot.index) throw new Error('snapshot content index mismatch');
      }
      for (const e of rd.committed) this.apply(n, e);
      for (const r of rd.readStates) n.readStates.push(r);
      for (const c of rd.readsLost) n.readsLost.push(c);
      n.core.advance();
    }
    const st = n.core.status();
    if (st.role === 'leader') {
      const s = this.leadersByTerm.get(st.term) ?? new Set<NodeId>();
      s.add(id);
      this.leadersByTerm.set(st.term, s);
    }
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.sm.index + 1) throw new Error(`${n.id}: applying ${e.index} after ${n.sm.index}`);
    n.sm.index = e.index;
    if (e.data !== null) n.sm.values.push(e.data);
    const key = `${e.term}:${JSON.stringify(e.data)}`;
    const prev = this.appliedAt.get(e.index);
    if (prev !== undefined && prev !== key) throw new Error(`safety: index ${e.index} applied as ${prev} and ${key} (${n.id})`);
    this.appliedAt.set(e.index, key);
  }

  /** Test switch: keep chunks handed out instead of storing them (a slow or failed store). */
  holdChunks = false;
  /** Readys whose chunk is held, oldest first. */
  held: Array<{ id: NodeId; rd: Ready }> = [];

  /** Store the held chunks now and report them (the driver finished its storage work). */
  releaseChunks(): void {
    const h = this.held;
    this.held = [];
    for (const { id, rd } of h) {
      storeChunk(this.core(id), this.node(id).snaps, rd);
      this.process(id);
    }
  }

  processAll(): void {
    for (const id of this.ids) this.process(id);
  }

  tick(ids: NodeId[] = this.ids): void {
    for (const id of ids) {
      this.core(id).tick();
      this.process(id);
    }
  }

  private linkUp(a: NodeId, b: NodeId): boolean {
    return !this.cut.has(`${a}>${b}`);
  }

  /** Deliver one message (FIFO); returns false when the queue is empty. */
  deliverOne(): boolean {
    const m = this.queue.shift();
    if (!m) return false;
    if (!this.linkUp(m.from, m.to) || !this.filter(m)) return true;
    const n = this.nodes.get(m.to);
    if (!n) return true;
    n.core.step(m);
    this.process(m.to);
    return true;
  }

  deliverAll(limit = 100_000): void {
    for (let i = 0; i < limit && this.deliverOne(); i++) {
      // deliver
    }
  }

  /** `ticks` rounds of: tick everybody, deliver everything. */
  run(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      this.tick();
      this.deliverAll();
    }
  }

  isolate(id: NodeId): void {
    for (const o of this.ids) {
      if (o === id) continue;
      this.cut.add(`${id}>${o}`);
      this.cut.add(`${o}>${id}`);
    }
  }
  partition(...groups: NodeId[][]): void {
    this.cut.clear();
    for (const g of groups) for (const h of groups) {
      if (g === h) continue;
      for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`);
    }
  }
  heal(): void {
    this.cut.clear();
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => this.core(id).status().role === 'leader');
  }

  /** Run until exactly one leader (whom everybody follows); returns it. */
  elect(maxTicks = 200): NodeId {
    for (let t = 0; t < maxTicks; t++) {
      this.tick();
      this.deliverAll();
      const ls = this.leaders();
      if (ls.length === 1) return ls[0]!;
    }
    throw new Error('no leader elected');
  }

  propose(id: NodeId, data: Json): { index: number; term: number } | null {
    const r = this.core(id).propose(data);
    this.process(id);
    return r;
  }

  /** Snapshot node `id`'s state machine at its applied index and compact with `trailing` entries. */
  snapshot(id: NodeId, trailing = 0): SnapshotMeta {
    const n = this.node(id);
    const idx = n.sm.index;
    const meta: SnapshotMeta = { index: idx, term: n.core.termAt(idx)!, config: [...this.ids] };
    const bytes = Buffer.from(JSON.stringify(n.sm));
    n.snaps.save(meta, bytes);
    n.core.snapshotAvailable(meta, bytes.length);
    if (!n.core.compact(meta, trailing)) throw new Error('compact refused');
    n.stored.snapshot = meta;
    n.stored.entries = n.stored.entries.filter((e) => e.index > n.core.status().firstIndex - 1);
    this.process(id);
    return meta;
  }

  /** Crash-restart a node from its stored state (a partial snapshot transfer is lost). */
  restart(id: NodeId): void {
    const n = this.node(id);
    const cur = n.snaps.cur;
    const fresh = this.makeNode(id, n.stored.hs, n.stored.entries, n.stored.snapshot, cur && n.stored.snapshot && sameMeta(cur.meta, n.stored.snapshot) ? cur.bytes : undefined, cur);
    this.nodes.set(id, fresh);
  }
}

/** Entries with the given terms at indexes from `start`. */
export function ents(terms: number[], start = 1): Entry[] {
  return terms.map((term, i) => ({ index: start + i, term, data: `e${start + i}t${term}` }));
}

export function cfg(id: NodeId, peers: NodeId[], snaps: SnapshotStore, over: Opts = {}, seed = 7): RaftConfig {
  return { ...defaultConfig, ...over, id, peers, random: mulberry32(seed), localSnapshot: snaps.current() };
}

/**
 * Run a lone core's Ready loop until idle, playing the driver: with `snaps`, chunks are stored
 * there and reported, and snapshot sends get their bytes from it (without, either is an error).
 */
export function drain(core: RaftCore, snaps?: MemSnapshots): { msgs: RaftMessage[]; readies: Ready[] } {
  const msgs: RaftMessage[] = [];
  const readies: Ready[] = [];
  while (core.hasReady()) {
    const rd = core.ready();
    readies.push(rd);
    if (!snaps && (rd.snapshotChunk || rd.snapshotSends.length > 0)) throw new Error('drain: snapshot work in a Ready but no store given');
    if (snaps) storeChunk(core, snaps, rd);
    msgs.push(...rd.early, ...rd.messages);
    if (snaps) msgs.push(...readSends(snaps, rd));
    core.advance();
  }
  return { msgs, readies };
}
