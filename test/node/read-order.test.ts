// A client that sends a write and then a read without waiting for the write's answer reads its
// own write, on a 3-node cluster of real `serve` processes, through the leader and through a
// follower: the leader's read index covers the client's own entries in flight (requests.ts,
// answeredThrough), while other clients' writes in flight do not hold its reads.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Network } from '../../src/cluster/network.js';
import { NodeProcess } from '../../src/cluster/node-process.js';
import { sleep, tmpDir } from './helpers.js';

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../../dist/node/main.js', import.meta.url)));

describe.skipIf(!built)('one client\'s requests in order on a cluster', () => {
  it('a read sent right behind the same client\'s write returns that write, at the leader and at a follower, with fsync on', async () => {
    const root = tmpDir('raftsnap-read-order-');
    const start = performance.now();
    const clock = () => performance.now() - start;
    const net = new Network(() => 0, clock);
    const ids = ['n1', 'n2', 'n3'];
    const nodes = ids.map((id) => new NodeProcess({ id, command: process.execPath, args: [RUN, 'serve', '--data-dir', join(root, id)], env: {}, logPath: join(root, `${id}.log`) }, clock));
    try {
      for (const n of nodes) {
        net.addNode(n);
        n.start();
      }
      const control = net.client('c0');
      for (const n of nodes) expect((await control.request(n.id, { type: 'init', node_id: n.id, node_ids: ids }, 10_000)).reply?.type).toBe('init_ok');
      let leader: string | null = null;
      for (let i = 0; i < 200 && leader === null; i++) {
        for (const id of ids) {
          const r = await control.request(id, { type: 'get_stats' }, 2000);
          if (r.reply?.role === 'leader') leader = id;
        }
        if (leader === null) await sleep(50);
      }
      expect(leader).not.toBeNull();
      // Background writers on other keys keep entries of other clients in flight meanwhile.
      let busy = true;
      const background = ids.map(async (id, j) => {
        const c = net.client(`bg${j}`);
        for (let v = 0; busy; v++) await c.request(id, { type: 'write', key: 100 + j, value: v }, 5000);
      });
      const stale: string[] = [];
      for (const [j, id] of ids.entries()) {
        const c = net.client(`c${j + 1}`);
        for (let v = 1; v <= 40; v++) {
          const [w, r] = await Promise.all([c.request(id, { type: 'write', key: j, value: v }, 5000), c.request(id, { type: 'read', key: j }, 5000)]);
          expect(w.reply?.type).toBe('write_ok');
          expect(r.reply?.type).toBe('read_ok');
          if (r.reply?.['value'] !== v) stale.push(`${id}${id === leader ? ' (leader)' : ''}: wrote ${v}, read ${JSON.stringify(r.reply?.['value'])}`);
        }
      }
      busy = false;
      await Promise.all(background);
      expect(stale).toEqual([]);
    } finally {
      for (const n of nodes) n.closeStdin();
      await Promise.all(nodes.map((n) => n.waitExit(10_000)));
      for (const n of nodes) if (n.state !== 'down') n.kill();
      net.close();
      await Promise.all(nodes.map((n) => n.closeLog()));
    }
  }, 60_000);
});
