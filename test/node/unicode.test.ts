/**
 * Strings that are not Unicode. JSON's \uD800 escapes can make a string with a lone UTF-16
 * surrogate; the WAL and the snapshots store strings as CBOR text (UTF-8), which cannot hold it:
 * written, acknowledged, and after a restart read back as U+FFFD (reproduced first: the write was
 * acknowledged and the value changed across a restart). Such a key or value is refused with 12
 * before it enters the log; a well-formed pair (an emoji) and every other string round-trips.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLine } from '../../src/node/protocol.js';
import { runServe, tmpDir } from './helpers.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const line = (body: string): string => `{"src":"c1","dest":"n1","body":${body}}`;
const init = '{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}';

describe('strings that are not Unicode', () => {
  it('a lone surrogate in a key, a value, a cas operand or an object key is refused with 12', () => {
    for (const body of [
      '{"type":"write","msg_id":5,"key":"a\\ud800","value":1}',
      '{"type":"write","msg_id":5,"key":1,"value":"x\\udc00y"}',
      '{"type":"cas","msg_id":5,"key":1,"from":1,"to":["ok","\\ud83d"]}',
      '{"type":"write","msg_id":5,"key":1,"value":{"\\ud800":1}}',
    ]) {
      const r = parseLine(line(body));
      expect(r.ok, body).toBe(false);
      if (!r.ok) {
        expect(r.reply?.msgId).toBe(5);
        expect(r.reason).toMatch(/lone UTF-16 surrogate/);
      }
    }
    // A pair is one character (an emoji), and an escaped backslash-u is plain text.
    expect(parseLine(line('{"type":"write","msg_id":6,"key":"\\ud83d\\ude00","value":"\\\\ud800"}')).ok).toBe(true);
  });

  it('a real node: the bad write gets 12 and nothing; a well-formed emoji survives a restart (WAL replay)', async () => {
    const dir = path.join(tmpDir(), 'n1');
    dirs.push(path.dirname(dir));
    const first = await runServe(
      [
        init,
        line('{"type":"write","msg_id":2,"key":1,"value":"a\\ud800"}'),
        line('{"type":"write","msg_id":3,"key":2,"value":"\\ud83d\\ude00 ok"}'),
        line('{"type":"read","msg_id":4,"key":1}'),
      ].join('\n') + '\n',
      ['--data-dir', dir],
    );
    const bodies = first.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body);
    expect(bodies.find((b) => b['in_reply_to'] === 2)).toMatchObject({ type: 'error', code: 12 });
    expect(bodies.find((b) => b['in_reply_to'] === 3)).toMatchObject({ type: 'write_ok' });
    expect(bodies.find((b) => b['in_reply_to'] === 4)).toMatchObject({ type: 'read_ok', value: null }); // nothing was written
    const again = await runServe([init, line('{"type":"read","msg_id":5,"key":2}')].join('\n') + '\n', ['--data-dir', dir]);
    const read = again.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body).find((b) => b['in_reply_to'] === 5);
    expect(read).toMatchObject({ type: 'read_ok', value: '\u{1F600} ok' });
  });
});
