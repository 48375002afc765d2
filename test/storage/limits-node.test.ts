// The node under the same limits: control messages' states and commands are held to the client
// limits (error 12, nothing changed), and a leader's InstallSnapshot announcing a file larger
// than any snapshot within the limits is refused before a byte is stored.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_VALUE_CHARS, maxSnapshotFileBytes, readLimits, setReadLimits } from '../../src/limits.js';
import { MemorySink } from '../../src/node/protocol.js';
import { DiskStorage } from '../../src/storage/index.js';
import { inProcessServer, noTimers } from '../node/helpers.js';
import { tmpDir } from './helpers.js';

afterEach(() => {
  setReadLimits(null);
});

type Out = { body: Record<string, unknown> };

describe('control messages under the client limits', () => {
  it('seed_state, install_snapshot and apply_entries with a value over the limits are refused with 12; the state is unchanged', async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, {}, noTimers);
    const line = (body: Record<string, unknown>) => s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body }));
    line({ type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] });
    const big = 'x'.repeat(MAX_VALUE_CHARS);
    let deep: unknown = 0;
    for (let i = 0; i < 65; i++) deep = [deep];
    line({ type: 'seed_state', msg_id: 2, state: { k: big }, commit_index: 1, term: 1 });
    line({ type: 'install_snapshot', msg_id: 3, snapshot_index: 5, snapshot_term: 1, state: { k: deep } });
    line({ type: 'apply_entries', msg_id: 4, entries: [{ index: 1, term: 1, command: { op: 'put', key: 'k', value: big } }] });
    line({ type: 'seed_state', msg_id: 5, state: { k: 'small' }, commit_index: 1, term: 1 });
    line({ type: 'get_state', msg_id: 6 });
    await s.idle();
    const out = sink.lines.map((l) => JSON.parse(l) as Out).map((m) => m.body);
    const byId = new Map(out.map((b) => [b['in_reply_to'], b]));
    for (const id of [2, 3, 4]) {
      expect(byId.get(id)?.['type'], String(id)).toBe('error');
      expect(byId.get(id)?.['code'], String(id)).toBe(12);
    }
    expect(String(byId.get(2)?.['text'])).toMatch(/state key "k": key and values take more than 65536 characters as JSON/);
    expect(String(byId.get(3)?.['text'])).toMatch(/nested more than 64 levels deep/);
    expect(byId.get(5)?.['type']).toBe('seed_state_ok');
    expect(byId.get(6)?.['state']).toEqual({ k: 'small' });
  });
});

describe('InstallSnapshot under the limits', () => {
  it('a transfer announcing a file beyond maxSnapshotFileBytes is refused before a byte is stored', () => {
    const dir = tmpDir();
    const st = DiskStorage.open(dir, { fsync: false, nodeId: 'n2' });
    try {
      const meta = { index: 10, term: 2, config: ['n1', 'n2'] };
      const huge = maxSnapshotFileBytes(readLimits()) + 1;
      expect(st.snapshotStore().receive(meta, huge, 0, Buffer.from('RAFTSNAP'))).toBe(0);
      expect(fs.readdirSync(path.join(dir, 'snap'))).toEqual([]);
      // Within the limit it is stored as it comes.
      expect(st.snapshotStore().receive(meta, 100, 0, Buffer.from('RAFTSNAP'))).toBe(8);
      expect(fs.readdirSync(path.join(dir, 'snap')).some((n) => n.endsWith('.recv'))).toBe(true);
      // A lower limit (RAFTSNAP_MAX_STATE_BYTES) lowers it.
      setReadLimits({ maxStateBytes: 1024 });
      expect(st.snapshotStore().receive(meta, 4 * 1024 * 1024, 0, Buffer.from('RAFTSNAP'))).toBe(0);
    } finally {
      st.close();
    }
  });
});
