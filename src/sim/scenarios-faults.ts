/**
 * Scenarios of storage crashes, disk faults and messages a cluster must refuse (docs/SIMULATION.md):
 *  - crash-storage: crashes at file-system calls of every step of the storage's work (snapshot save
 *    and receive, compaction, segment deletion, WAL rotation, lock and meta.json creation,
 *    recovery itself), with a snapshot every 1-3 entries and tiny WAL segments;
 *  - disk-fault: EIO, a full disk or a read-only file system on the leader, then on a follower:
 *    each must stop (fail-stop), the two others stay available, and it comes back once restarted;
 *  - control-messages: the single-node grader messages that replace state or log (seed_state,
 *    install_snapshot, apply_entries, seed_committed_log) sent to a leader of three are refused
 *    with error 10 and change nothing;
 *  - membership-restart: a node restarted with an `init` that lists other members is refused
 *    (error 22) and does not join; restarted with the recorded members, it does.
 */
import type { Json } from '../raft/types.js';
import type { SimNode } from './node.js';
import { type Scenario, pickFollower, randomized, scenarioFail } from './scenario-kit.js';
import { NO_NEMESIS } from './config.js';
import type { Reply, Simulation } from './sim.js';

/**
 * Storage steps the crash-storage scenario aims crash points at (node.ts storageStep), besides
 * crashes at a random one of the next calls. The steps of a start (lock-meta, recovery) are
 * reached by the crashes armed at restarts (`restartCrash`).
 */
export const AIMED_STEPS = ['wal-append', 'wal-rotate', 'segment-delete', 'snapshot-save', 'snapshot-receive', 'snapshot-prune', 'snapshot-dir-fsync', 'wal-dir-fsync'] as const;

/** Every step crash-storage must reach over its seeds (test/sim/storage-faults.test.ts). */
export const STORAGE_STEPS = ['wal-append', 'wal-rotate', 'segment-delete', 'snapshot-save', 'snapshot-receive', 'snapshot-prune', 'lock-meta', 'recovery'] as const;

const FAULT_CODES = ['EIO', 'ENOSPC', 'EROFS'] as const;

export const FAULT_SCENARIOS: Scenario[] = [
  {
    name: 'crash-storage',
    description:
      'crashes at file-system calls of every storage step (snapshot save and receive, compaction, segment deletion, WAL rotation, lock and meta.json, recovery), snapshot every 1-3 entries, tiny segments',
    configure(seed) {
      const { cfg, r } = randomized(seed, 'crash-storage');
      cfg.nodes = 3;
      cfg.node.snapshotThreshold = r.pick([1, 2, 3]);
      cfg.node.trailingLogs = r.pick([0, 1]);
      cfg.node.snapshotChunkSize = r.pick([64, 128]);
      cfg.disk.segmentBytes = r.pick([600, 1024, 1536]);
      cfg.disk.retain = r.pick([1, 2]);
      // A third of the starts (the first one included) crash at one of their first calls.
      cfg.restartCrash = 0.3;
      // Partitions leave nodes behind the compaction point: they catch up by InstallSnapshot.
      cfg.nemesis = { ...NO_NEMESIS, crashes: true, crashPoints: true, crashPointCalls: 16, crashPointShare: 0.85, crashPointSteps: AIMED_STEPS, partitions: true, interval: [40, 150] };
      cfg.durationMs = 3000;
      cfg.quietMs = 2000;
      return cfg;
    },
    script(sim) {
      sim.endChecks.push(() => {
        if (sim.counters.crashPointsFired < 2) scenarioFail(`only ${sim.counters.crashPointsFired} crash points fired`);
        if (sim.invariants.maxCommitted === 0) scenarioFail('nothing was committed');
      });
    },
  },
  {
    name: 'disk-fault',
    description: 'EIO, a full disk or a read-only file system on the leader, then on a follower: it stops, the other two stay available, it comes back after a restart',
    configure(seed) {
      const { cfg, r } = randomized(seed, 'disk-fault');
      cfg.nodes = 3;
      cfg.node.snapshotThreshold = r.pick([3, 10]);
      // Down long enough to see the two others elect a leader and commit without it.
      cfg.faultRestartMs = [1600, 1800];
      cfg.durationMs = 4600;
      cfg.quietMs = 2000;
      return cfg;
    },
    script(sim) {
      const seed = sim.cfg.seed;
      diskFaultEpisode(sim, 400, 'leader', FAULT_CODES[seed % 3]!);
      diskFaultEpisode(sim, 2600, 'follower', FAULT_CODES[(seed + 1) % 3]!);
      sim.endChecks.push(() => {
        if (sim.counters.diskFaultStops < 2) scenarioFail(`only ${sim.counters.diskFaultStops} of 2 disk faults stopped their node`);
      });
    },
  },
  {
    name: 'control-messages',
    description: 'seed_state, install_snapshot, apply_entries and seed_committed_log sent to the leader of three (and one to a follower) are refused with error 10 and change nothing',
    configure(seed) {
      const { cfg, r } = randomized(seed, 'control-messages');
      cfg.nodes = 3;
      cfg.node.snapshotThreshold = r.pick([0, 3, 10]);
      cfg.durationMs = 2500;
      cfg.quietMs = 1500;
      return cfg;
    },
    script(sim) {
      controlMessagesScript(sim);
    },
  },
  {
    name: 'membership-restart',
    description: 'a node restarted with an init listing other members is refused (22) and does not join; restarted with the recorded members it catches up',
    configure(seed) {
      const { cfg, r } = randomized(seed, 'membership-restart');
      cfg.nodes = r.chance(0.7) ? 3 : 5;
      cfg.clients = cfg.nodes;
      cfg.node.snapshotThreshold = r.pick([0, 3, 10]);
      cfg.durationMs = 2500;
      cfg.quietMs = 1500;
      return cfg;
    },
    script(sim) {
      membershipScript(sim);
    },
  },
];

/**
 * At `at` ms, inject `code` into the disk of the leader (or of a follower). Goals: the node stops
 * within 500 ms (it persists something for nearly every client request); while it is down (it is
 * restarted 1600-1800 ms after it stopped) the two others commit within AVAILABLE_MS; it comes
 * back up. That it sends nothing after its storage failed is an invariant of every run
 * ("fail-stop").
 *
 * AVAILABLE_MS: after the leader stops, the two nodes left time out 150-290 ms after its last
 * heartbeat and both may campaign in the same round (a split vote, about one round in ten: their
 * timeouts fall within a round trip of each other); each round takes at most 290 ms. 1500 ms
 * allows four more rounds (650 ms, two rounds, missed 4 of 1,540 episodes in 770 seeds).
 */
const AVAILABLE_MS = 1500;

function diskFaultEpisode(sim: Simulation, at: number, role: 'leader' | 'follower', code: (typeof FAULT_CODES)[number]): void {
  const begin = (waited: number): void => {
    const ldr = sim.leader();
    if (!ldr) {
      if (waited >= 1500) scenarioFail(`no leader for ${waited} ms before the ${role}'s disk fault`);
      sim.at(20, `disk fault on the ${role} (wait for a leader)`, () => begin(waited + 20));
      return;
    }
    const node = role === 'leader' ? ldr : pickFollower(sim);
    sim.note(`SCENARIO ${code} on the ${role} ${node.id}`);
    sim.injectFault(node, code, sim.rng, true);
    const faultAt = sim.time;
    const inc = node.incarnation;
    const waitStop = (): void => {
      if (node.up && node.incarnation === inc) {
        if (sim.time - faultAt >= 500) scenarioFail(`${role} ${node.id} did not stop within 500 ms of its disk fault (${code})`);
        sim.at(5, `wait for ${node.id} to stop`, waitStop);
        return;
      }
      const commit = sim.invariants.maxCommitted;
      sim.note(`SCENARIO ${node.id} stopped ${Math.round(sim.time - faultAt)} ms after ${code}`);
      sim.at(AVAILABLE_MS, `the others commit without ${node.id}`, () => {
        if (sim.invariants.maxCommitted <= commit) scenarioFail(`nothing committed in the ${AVAILABLE_MS} ms after the ${role} ${node.id} stopped (commit ${commit})`);
      });
    };
    sim.at(5, `wait for ${node.id} to stop`, waitStop);
  };
  sim.at(at, `disk fault on the ${role}`, () => begin(0));
}

/** The control messages that replace state or log outside Raft, as a grader would send them. */
function controlBodies(msgId: number): Array<Record<string, Json>> {
  const state = { '900': 'seeded' };
  const entry = { index: 1000, term: 1, data: { op: 'write', key: 900, value: 'seeded' } };
  return [
    { type: 'seed_state', msg_id: msgId, state, commit_index: 1000, term: 1 },
    { type: 'install_snapshot', msg_id: msgId + 1, snapshot_index: 1000, snapshot_term: 1, state },
    { type: 'apply_entries', msg_id: msgId + 2, entries: [entry] },
    { type: 'seed_committed_log', msg_id: msgId + 3, entries: [entry], commit_index: 1000 },
  ];
}

function controlMessagesScript(sim: Simulation): void {
  const CLIENT = 'c900';
  const sent = new Map<number, { type: string; node: SimNode; before: { term: number; last: number; snapshot: number; applied: number } }>();
  const replies = new Map<number, Reply>();
  sim.replyTaps.push((from, dest, body) => {
    if (dest !== CLIENT || body.in_reply_to === undefined) return;
    const s = sent.get(body.in_reply_to);
    if (!s) return;
    replies.set(body.in_reply_to, body);
    if (body.type !== 'error' || body.code !== 10) scenarioFail(`${s.type} to ${from} was answered ${JSON.stringify(body)}, not refused with error 10`);
    // Nothing changed: the log was neither truncated nor replaced, no snapshot at the seeded index.
    const st = s.node.status();
    if (st && s.node.up) {
      const b = s.before;
      if (st.term === b.term && st.lastIndex < b.last) scenarioFail(`${s.type} to ${s.node.id}: its log shrank from ${b.last} to ${st.lastIndex}`);
      if (st.snapshot?.index === 1000 || s.node.applied < b.applied) scenarioFail(`${s.type} to ${s.node.id} changed its state (applied ${b.applied} -> ${s.node.applied})`);
    }
  });
  const send = (node: SimNode, body: Record<string, Json>): void => {
    const st = node.status()!;
    sent.set(body['msg_id'] as number, {
      type: body['type'] as string,
      node,
      before: { term: st.term, last: st.lastIndex, snapshot: st.snapshot?.index ?? 0, applied: node.applied },
    });
    sim.note(`SCENARIO ${body['type'] as string} to ${node.id} (${st.role})`);
    sim.request(node, CLIENT, body);
  };
  const bodies = controlBodies(1);
  const toLeader = (i: number): void => {
    const ldr = sim.leader();
    if (!ldr) {
      sim.at(20, 'control message (wait for a leader)', () => toLeader(i));
      return;
    }
    send(ldr, bodies[i]!);
    if (i + 1 < bodies.length) sim.at(250, 'control message to the leader', () => toLeader(i + 1));
  };
  sim.at(600, 'control message to the leader', () => toLeader(0));
  sim.at(1800, 'control message to a follower', () => {
    const f = pickFollower(sim);
    if (f.up && f.status()) send(f, controlBodies(11)[sim.rng.int(4)]!);
  });
  sim.endChecks.push(() => {
    for (const [id, s] of sent) if (!replies.has(id)) scenarioFail(`${s.type} to ${s.node.id} was never answered`);
    if (sent.size < 4) scenarioFail(`only ${sent.size} control messages were sent`);
    for (const n of sim.nodes) if (n.kv.has('900') || n.kv.has(900)) scenarioFail(`${n.id} holds the seeded key 900`);
  });
}

function membershipScript(sim: Simulation): void {
  let node: SimNode | null = null;
  let refused = false;
  let sentWhileRefused = 0;
  let refusedInc = -1;
  sim.taps.push((from) => {
    if (from === node && from.incarnation === refusedInc) sentWhileRefused++;
  });
  sim.at(700, 'crash a follower', () => {
    node = pickFollower(sim);
    sim.crash(node, sim.rng.chance(0.5), 'scenario');
  });
  sim.at(800, 'restart it with other members', async () => {
    const n = node!;
    const others = [...n.peers, `n${n.peers.length + 1}`];
    n.expectFatal = /records the members/;
    sim.note(`SCENARIO restart ${n.id} with init node_ids ${others.join(',')}`);
    await sim.restart(n, others);
    refusedInc = n.incarnation;
    const r = n.initReply;
    if (!r || r.type !== 'error' || r.code !== 22) scenarioFail(`${n.id}'s init with other members was answered ${JSON.stringify(r)}, not refused with 22`);
    if (n.up) scenarioFail(`${n.id} went on running after its init was refused`);
    // The directory still records the cluster's members.
    const meta = JSON.parse(n.fs.readFile(`${n.dir}/meta.json`).toString()) as { members?: string[] };
    if (JSON.stringify(meta.members) !== JSON.stringify(n.peers)) scenarioFail(`${n.id}'s meta.json records ${JSON.stringify(meta.members)} after the refused init`);
    refused = true;
  });
  sim.at(1400, 'restart it with the recorded members', async () => {
    const n = node!;
    n.expectFatal = null;
    await sim.restart(n);
    if (!n.up || n.initReply?.type !== 'init_ok') scenarioFail(`${n.id} did not start again with the recorded members (${JSON.stringify(n.initReply)})`);
  });
  sim.endChecks.push(() => {
    if (!refused) scenarioFail('the init with other members was never tried');
    if (sentWhileRefused > 0) scenarioFail(`${node!.id} sent ${sentWhileRefused} messages to other nodes after its init was refused`);
  });
}
