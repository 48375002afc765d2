// The naive alternative of the recovery benchmark (bench/recovery.js): a node process that loads
// its state from a JSON+gzip file (an array of [key, value] pairs) into a Map, then speaks just
// enough of Maelstrom's lin-kv protocol to answer `init` and reads from that Map.
//   node bench/naive-node.js STATE.json.gz
import fs from 'node:fs';
import readline from 'node:readline';
import zlib from 'node:zlib';

const file = process.argv[2];
const kv = new Map();
if (file) {
  const pairs = JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
  for (const [k, v] of pairs) kv.set(typeof k === 'object' ? JSON.stringify(k) : k, v);
}
let self = '';
let next = 0;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const msg = JSON.parse(line);
  const b = msg.body;
  let body;
  if (b.type === 'init') {
    self = b.node_id;
    body = { type: 'init_ok' };
  } else if (b.type === 'read') {
    const v = kv.get(b.key);
    body = v === undefined ? { type: 'error', code: 20, text: 'not found' } : { type: 'read_ok', value: v };
  } else body = { type: 'error', code: 10, text: 'not supported' };
  process.stdout.write(JSON.stringify({ src: self, dest: msg.src, body: { ...body, msg_id: next++, in_reply_to: b.msg_id } }) + '\n');
});
