// The "answer at once" node of the cluster benchmark: speaks Maelstrom's lin-kv protocol and
// replies to every request immediately from a local Map, with no Raft, no disk and no other node.
// Not linearizable across nodes (each keeps its own map); it measures the fastest any node can be
// through the same router and clients on this machine: the harness's limit.
//   node bench/answer-node.js
import readline from 'node:readline';

const kv = new Map();
let self = '';
let next = 0;
const out = [];
let scheduled = false;

function flush() {
  scheduled = false;
  const text = out.join('');
  out.length = 0;
  process.stdout.write(text);
}

function reply(msg, body) {
  out.push(JSON.stringify({ src: self || msg.dest, dest: msg.src, body: { ...body, msg_id: next++, in_reply_to: msg.body.msg_id } }) + '\n');
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line === '') return;
  const msg = JSON.parse(line);
  const b = msg.body;
  switch (b.type) {
    case 'init':
      self = b.node_id;
      reply(msg, { type: 'init_ok' });
      break;
    case 'read':
      reply(msg, { type: 'read_ok', value: kv.has(b.key) ? kv.get(b.key) : null });
      break;
    case 'write':
      kv.set(b.key, b.value);
      reply(msg, { type: 'write_ok' });
      break;
    case 'cas':
      if (!kv.has(b.key)) reply(msg, { type: 'error', code: 20, text: 'key does not exist' });
      else if (kv.get(b.key) !== b.from) reply(msg, { type: 'error', code: 22, text: 'precondition failed' });
      else {
        kv.set(b.key, b.to);
        reply(msg, { type: 'cas_ok' });
      }
      break;
    case 'get_stats':
      reply(msg, { type: 'get_stats_ok', role: 'answer-at-once' });
      break;
    default:
      if (b.msg_id !== undefined) reply(msg, { type: 'error', code: 10, text: `unsupported ${b.type}` });
  }
});
rl.on('close', () => {
  flush();
});
