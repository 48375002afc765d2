/**
 * Client sessions of the replicated state machine (Raft dissertation §6.3), for requests that a
 * follower forwarded to the leader: the leader puts the forward's identity into the log entry it
 * proposes (`session: {origin, id, low}`), and applying an entry whose identity was already applied
 * does not execute the command again but answers with the result recorded the first time. The
 * table is part of the replicated state: every replica builds it the same way from the applied log,
 * it goes into snapshots (the `sessions` field of the end item, docs/FORMAT.md) and is restored
 * from them.
 *
 * `origin` names the forwarding process (sender and its random origin name), `id` is the forward's
 * msg_id, and `low` is the forwarding process's low-water mark: every forward of that process with a
 * smaller msg_id has been answered (or timed out) there, so nobody waits for it any more. Applying
 * an entry raises its origin's mark to `low` and forgets the results below it (the table holds
 * little more than the forwards in flight); an entry whose id is below its origin's mark is stale:
 * it is not executed and gives no result (its sender answered its client already: a result, or an
 * indefinite error on a timeout, which allows not executing it).
 *
 * Bounds, deterministic because they depend only on the applied log: per origin the last
 * SESSION_IDS_PER_ORIGIN identities applied; at most SESSION_ORIGINS origins, the one least
 * recently used (by log index of its last applied entry) evicted first.
 */
import type { Json } from '../raft/types.js';
import type { KvResult } from './store.js';

export const SESSION_IDS_PER_ORIGIN = 1024;
export const SESSION_ORIGINS = 256;

/** The identity of a forwarded request as it travels in a log entry. */
export interface SessionId {
  origin: string;
  id: number;
  /** The sender's low-water mark (<= id); absent: none given. */
  low?: number;
}

/** The `session` of a log entry's data, or null when it carries none (or a malformed one). */
export function sessionOf(data: Json): SessionId | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const s = data['session'];
  if (s === null || s === undefined || typeof s !== 'object' || Array.isArray(s)) return null;
  const origin = s['origin'];
  const id = s['id'];
  if (typeof origin !== 'string' || typeof id !== 'number' || !Number.isSafeInteger(id)) return null;
  const low = s['low'];
  if (typeof low === 'number' && Number.isSafeInteger(low) && low <= id) return { origin, id, low };
  return { origin, id };
}

const OK: KvResult = { ok: true };

interface OriginSessions {
  /** Log index of the last entry applied for this origin. */
  last: number;
  /** Low-water mark: ids below it are stale. */
  low: number;
  /** Identities applied (at or above `low`), oldest first, with their results. */
  ids: Map<number, KvResult>;
}

/** What the table says about an identity. */
export type SessionLookup = { kind: 'new' } | { kind: 'applied'; result: KvResult } | { kind: 'stale' };

/**
 * Snapshot shape (a JSON value, compact because it travels in every snapshot):
 * `{"forwards": [{"origin": o, "last": index, "low": mark, "ids": [id1, d2, d3, ...], "failed":
 * [[id, code, text], ...]}, ...]}`. Origins least recently used first; `ids` oldest first, the
 * first absolute and each next one as the difference to the one before; `failed` (absent when
 * empty) lists the identities whose result was an error, every other one succeeded (`{"ok":
 * true}`). Only writes and cas carry identities (a read changes nothing), so these two kinds of
 * result are all there is to record.
 */
export class SessionTable {
  private origins = new Map<string, OriginSessions>();

  get size(): number {
    return this.origins.size;
  }

  lookup(s: SessionId): SessionLookup {
    const o = this.origins.get(s.origin);
    if (!o) return { kind: 'new' };
    if (s.id < o.low) return { kind: 'stale' };
    const r = o.ids.get(s.id);
    return r ? { kind: 'applied', result: r } : { kind: 'new' };
  }

  /** The recorded result of this identity (undefined: none). */
  resultOf(s: SessionId): KvResult | undefined {
    const l = this.lookup(s);
    return l.kind === 'applied' ? l.result : undefined;
  }

  /** Record the result of the entry at `index` carrying identity `s` (a write's or a cas's). */
  record(s: SessionId, index: number, result: KvResult): void {
    let o = this.origins.get(s.origin);
    if (o) this.origins.delete(s.origin); // re-inserted last: most recently used
    else o = { last: index, low: 0, ids: new Map() };
    o.last = index;
    if (s.low !== undefined && s.low > o.low) {
      o.low = s.low;
      for (const id of [...o.ids.keys()]) if (id < o.low) o.ids.delete(id);
    }
    o.ids.set(s.id, result);
    if (o.ids.size > SESSION_IDS_PER_ORIGIN) o.ids.delete(o.ids.keys().next().value as number);
    this.origins.set(s.origin, o);
    if (this.origins.size > SESSION_ORIGINS) this.origins.delete(this.origins.keys().next().value as string);
  }

  /** The table as stored in a snapshot (see the class comment). */
  toJson(): Json {
    const forwards: Json[] = [];
    for (const [origin, o] of this.origins) {
      const ids: Json[] = [];
      const failed: Json[] = [];
      let prev = 0;
      for (const [id, r] of o.ids) {
        ids.push(ids.length === 0 ? id : id - prev);
        prev = id;
        if (!r.ok) failed.push([id, r.code, r.text]);
      }
      const f: Record<string, Json> = { origin, last: o.last, low: o.low, ids };
      if (failed.length > 0) f['failed'] = failed;
      forwards.push(f);
    }
    return { forwards };
  }

  /** Load a table from a snapshot's `sessions`; anything not of this shape gives an empty table. */
  static fromJson(j: Json | undefined | null): SessionTable {
    const t = new SessionTable();
    if (j === null || j === undefined || typeof j !== 'object' || Array.isArray(j)) return t;
    const fw = j['forwards'];
    if (!Array.isArray(fw)) return t;
    for (const f of fw) {
      if (f === null || typeof f !== 'object' || Array.isArray(f)) continue;
      const origin = f['origin'];
      const last = f['last'];
      const low = f['low'];
      const ids = f['ids'];
      if (typeof origin !== 'string' || typeof last !== 'number' || typeof low !== 'number' || !Array.isArray(ids)) continue;
      const errors = new Map<number, KvResult>();
      const failed = f['failed'];
      if (Array.isArray(failed)) {
        for (const x of failed) {
          if (!Array.isArray(x) || typeof x[0] !== 'number' || (x[1] !== 20 && x[1] !== 22)) continue; // KEY_DOES_NOT_EXIST, PRECONDITION_FAILED
          errors.set(x[0], { ok: false, code: x[1], text: typeof x[2] === 'string' ? x[2] : '' });
        }
      }
      const m = new Map<number, KvResult>();
      let id = 0;
      for (const [i, d] of ids.entries()) {
        if (typeof d !== 'number') break;
        id = i === 0 ? d : id + d;
        m.set(id, errors.get(id) ?? OK);
      }
      t.origins.delete(origin);
      t.origins.set(origin, { last, low, ids: m });
    }
    return t;
  }
}
