/**
 * Bad values on the wire (issue 7): limits on line size and nesting depth, numbers JSON cannot
 * carry back, messages for another node and replies to nothing. Reproduced first against the
 * node as it was: a write nested 100,000 levels deep wedged it (stack overflow in the storage
 * encoder), `value: 1e400` was acknowledged and read back as null, a message for another node id
 * was answered, an `error` message got an error reply.
 */
import { describe, expect, it } from 'vitest';
import { LineSplitter, MemorySink, parseLine, type TooLongLine } from '../../src/node/protocol.js';
import { EnvelopeScanner, MAX_LINE_CHARS, MAX_MESSAGE_DEPTH, MAX_VALUE_CHARS, MAX_VALUE_DEPTH } from '../../src/node/wire-limits.js';
import { inProcessServer, noTimers } from './helpers.js';

const nest = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);
const req = (body: string, dest = 'n1'): string => `{"src":"c1","dest":"${dest}","body":${body}}`;

describe('parseLine: limits checked before anything enters the log', () => {
  it('a write nested 100,000 levels deep is refused with 12, without recursion', () => {
    const r = parseLine(req(`{"type":"write","msg_id":5,"key":"k","value":${nest(100_000)}}`));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reply).toEqual({ src: 'c1', dest: 'n1', msgId: 5 });
      expect(r.reason).toMatch(/nested/);
    }
  });

  it(`values may nest ${MAX_VALUE_DEPTH} levels, not one more; a whole message ${MAX_MESSAGE_DEPTH}`, () => {
    expect(parseLine(req(`{"type":"write","msg_id":1,"key":"k","value":${nest(MAX_VALUE_DEPTH)}}`)).ok).toBe(true);
    const deeper = parseLine(req(`{"type":"cas","msg_id":2,"key":"k","from":1,"to":${nest(MAX_VALUE_DEPTH + 1)}}`));
    expect(deeper.ok).toBe(false);
    if (!deeper.ok) expect(deeper.reply?.msgId).toBe(2);
    const key = parseLine(req(`{"type":"read","msg_id":3,"key":${nest(MAX_VALUE_DEPTH + 1)}}`));
    expect(!key.ok && key.reply?.msgId).toBe(3);
    // Any message (a control message's state, an unknown field): the envelope and body are 2 levels.
    expect(parseLine(req(`{"type":"get_state","msg_id":4,"x":${nest(MAX_MESSAGE_DEPTH - 2)}}`)).ok).toBe(true);
    const deep = parseLine(req(`{"type":"get_state","msg_id":4,"x":${nest(MAX_MESSAGE_DEPTH - 1)}}`));
    expect(!deep.ok && deep.reply?.msgId).toBe(4);
    // A long line is measured on its text first: brackets inside strings do not count.
    const inString = parseLine(req(`{"type":"get_state","msg_id":5,"x":"${'['.repeat(200_000)}"}`));
    expect(inString.ok).toBe(true);
    const longDeep = parseLine(req(`{"type":"get_state","msg_id":5,"pad":"${'x'.repeat(100_000)}","x":${nest(MAX_MESSAGE_DEPTH)}}`));
    expect(!longDeep.ok && longDeep.reply?.msgId).toBe(5);
    // An object nests like an array.
    const obj = '{"a":'.repeat(MAX_VALUE_DEPTH + 1) + '1' + '}'.repeat(MAX_VALUE_DEPTH + 1);
    expect(parseLine(req(`{"type":"write","msg_id":6,"key":"k","value":${obj}}`)).ok).toBe(false);
  });

  it('numbers that JSON cannot carry back (1e400 parses to Infinity) are refused with 12, wherever they are', () => {
    for (const [body, id] of [
      ['{"type":"write","msg_id":7,"key":"k","value":1e400}', 7],
      ['{"type":"write","msg_id":8,"key":-1e400,"value":1}', 8],
      ['{"type":"cas","msg_id":9,"key":"k","from":1,"to":[1,{"a":1e999}]}', 9],
      ['{"type":"seed_state","msg_id":10,"state":{"x":1e400},"commit_index":1,"term":1}', 10],
    ] as const) {
      const r = parseLine(req(body));
      expect(r.ok, body).toBe(false);
      if (!r.ok) {
        expect(r.reply?.msgId).toBe(id);
        expect(r.reason).toMatch(/finite|Infinity/);
      }
    }
    // Big but finite numbers are fine.
    expect(parseLine(req('{"type":"write","msg_id":1,"key":"k","value":1e300}')).ok).toBe(true);
  });

  it(`client keys and values are limited to ${MAX_VALUE_CHARS} characters of JSON`, () => {
    const ok = 'x'.repeat(MAX_VALUE_CHARS - 100);
    expect(parseLine(req(`{"type":"write","msg_id":1,"key":"k","value":"${ok}"}`)).ok).toBe(true);
    const big = 'x'.repeat(MAX_VALUE_CHARS + 1);
    const r = parseLine(req(`{"type":"write","msg_id":2,"key":"k","value":"${big}"}`));
    expect(!r.ok && r.reply?.msgId).toBe(2);
    if (!r.ok) expect(r.reason).toMatch(/characters/);
    // Measured as the node writes them to its log: 1e20 (4 characters here) is 21 there.
    const many = '[' + Array.from({ length: Math.ceil(MAX_VALUE_CHARS / 21) + 10 }, () => '1e20').join(',') + ']';
    expect(many.length).toBeLessThan(MAX_VALUE_CHARS);
    expect(parseLine(req(`{"type":"write","msg_id":3,"key":"k","value":${many}}`)).ok).toBe(false);
    // A forward carries a client request: the same limits.
    const fwd = parseLine(`{"src":"n2","dest":"n1","body":{"type":"raft_forward","msg_id":4,"request":{"op":"write","key":"k","value":${nest(MAX_VALUE_DEPTH + 1)}}}}`);
    expect(fwd.ok).toBe(false);
  });

  it('a bad reply (an error, or a body with in_reply_to) is never answered', () => {
    for (const body of [
      '{"type":"error","in_reply_to":3,"code":1e400}',
      `{"type":"read_ok","in_reply_to":3,"msg_id":4,"value":${nest(MAX_MESSAGE_DEPTH)}}`,
      '{"in_reply_to":3,"msg_id":5}',
    ]) {
      const r = parseLine(req(body));
      expect(r.ok, body).toBe(false);
      if (!r.ok) expect(r.reply, body).toBeNull();
    }
  });

  it('a line longer than the limit is refused, answered when its envelope can be read', () => {
    const long = req(`{"type":"write","key":"k","value":"${'x'.repeat(100)}","msg_id":9}`);
    const r = parseLine(long, { length: MAX_LINE_CHARS + 1, envelope: new EnvelopeScanner().push(long).result() });
    expect(!r.ok && r.reply).toEqual({ src: 'c1', dest: 'n1', msgId: 9 });
  });
});

describe('EnvelopeScanner (over-long lines are scanned, never held)', () => {
  it('finds src, dest and body.msg_id anywhere in the line, across chunks, ignoring nested look-alikes', () => {
    const line = '{"body":{"value":{"msg_id":1,"src":"fake"},"type":"wr\\"ite","in_reply_to":null,"msg_id":42},"dest":"n1","src":"c\\u0031"}';
    for (const step of [1, 3, 7, line.length]) {
      const s = new EnvelopeScanner();
      for (let i = 0; i < line.length; i += step) s.push(line.slice(i, i + step));
      expect(s.result(), `step ${step}`).toEqual({ src: 'c1', dest: 'n1', msgId: 42, type: 'wr"ite', reply: true });
    }
  });

  it('survives deep nesting and huge strings in constant memory; a non-object gives nothing', () => {
    const s = new EnvelopeScanner();
    s.push('{"src":"c2","body":{"type":"write","value":');
    for (let i = 0; i < 100; i++) s.push('['.repeat(10_000));
    s.push('"' + 'y'.repeat(1_000_000) + '"');
    for (let i = 0; i < 100; i++) s.push(']'.repeat(10_000));
    s.push(',"msg_id":7},"dest":"n1"}');
    expect(s.result()).toEqual({ src: 'c2', dest: 'n1', msgId: 7, type: 'write', reply: false });
    expect(new EnvelopeScanner().push('[{"src":"c1"}]').result()).toEqual({ reply: false });
    expect(new EnvelopeScanner().push('{"src":"c1","body":{"msg_id":1.5}}').result()).toEqual({ src: 'c1', reply: false });
  });
});

describe('LineSplitter with a line limit', () => {
  it('hands over normal lines and reports a too-long one by its length and envelope, without keeping it', () => {
    const got: Array<{ line: string; tooLong?: TooLongLine }> = [];
    const s = new LineSplitter((line, tooLong) => got.push(tooLong ? { line, tooLong } : { line }), 1000);
    s.push('{"a":1}\n{"src":"c1","dest":"n1","body":{"type":"write","value":"');
    for (let i = 0; i < 50; i++) s.push('z'.repeat(100));
    s.push('","msg_id":3}}\n{"b":2}');
    s.push('\n' + 'q'.repeat(3000));
    s.end();
    expect(got.map((g) => g.line)).toEqual(['{"a":1}', '', '{"b":2}', '']);
    expect(got[1]!.tooLong).toEqual({ length: 5070, envelope: { src: 'c1', dest: 'n1', msgId: 3, type: 'write', reply: false } });
    expect(got[3]!.tooLong).toEqual({ length: 3000, envelope: { reply: false } });
  });

  it('splits a line that arrives in many small chunks in linear time', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    const chunk = 'a'.repeat(64 * 1024);
    const t0 = performance.now();
    for (let i = 0; i < 400; i++) s.push(chunk); // 25 MiB, under the limit
    s.push('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBe(400 * chunk.length);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

type Out = { src: string; dest: string; body: Record<string, unknown> };

describe('the server: dest, replies and bad values', () => {
  it('drops messages for another node id and replies to nothing (with a log line); Raft traffic and forwards still work', async () => {
    const sink = new MemorySink();
    const warnings: string[] = [];
    const s = inProcessServer(sink, {}, noTimers);
    (s as unknown as { log: { warn(m: string): void } }).log.warn = (m: string) => warnings.push(m);
    const line = (src: string, dest: string, body: Record<string, unknown>) => s.handleLine(JSON.stringify({ src, dest, body }));
    line('c0', 'n1', { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] });
    line('c1', 'n1', { type: 'write', msg_id: 2, key: 'k', value: 1 });
    line('c1', 'n9', { type: 'write', msg_id: 3, key: 'k', value: 2 }); // another node's
    line('c1', 'n9', { type: 'write', msg_id: 4 }); // another node's, and malformed
    line('c1', 'n1', { type: 'error', in_reply_to: 17, code: 13, text: 'x' });
    line('c1', 'n1', { type: 'read_ok', in_reply_to: 18, msg_id: 5, value: 1 });
    line('c1', 'n1', { type: 'write_ok', in_reply_to: 19 });
    line('n2', 'n1', { type: 'raft_forward', msg_id: 6, request: { op: 'read', key: 'k' } });
    line('c1', 'n1', { type: 'read', msg_id: 7, key: 'k' });
    await s.idle();
    const out = sink.lines.map((l) => JSON.parse(l) as Out);
    expect(out.map((m) => [m.dest, m.body['type'], m.body['in_reply_to']])).toEqual([
      ['c0', 'init_ok', 1],
      ['c1', 'write_ok', 2],
      ['n2', 'raft_forward_reply', 6],
      ['c1', 'read_ok', 7],
    ]);
    expect(out[3]!.body['value']).toBe(1);
    expect(warnings.filter((w) => /n9/.test(w))).toHaveLength(2);
    expect(warnings.filter((w) => /reply/.test(w)).length).toBeGreaterThanOrEqual(3);
    await s.end();
  });

  it('before init any dest is taken (init names the node)', async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, {}, noTimers);
    s.handleLine(req('{"type":"read","msg_id":1,"key":1}', 'n7'));
    s.handleLine(JSON.stringify({ src: 'c0', dest: 'n7', body: { type: 'init', msg_id: 2, node_id: 'n7', node_ids: ['n7'] } }));
    await s.idle();
    const out = sink.lines.map((l) => JSON.parse(l) as Out);
    expect(out.map((m) => [m.body['type'], m.body['code']])).toEqual([['error', 11], ['init_ok', undefined]]);
    await s.end();
  });

  it('a refused value never reaches the state: 1e400 and a 100,000-deep write leave the old value', async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, {}, noTimers);
    s.handleLine(JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } }));
    s.handleLine(req('{"type":"write","msg_id":2,"key":"k","value":3}'));
    s.handleLine(req('{"type":"write","msg_id":3,"key":"k","value":1e400}'));
    s.handleLine(req(`{"type":"write","msg_id":4,"key":"k","value":${nest(100_000)}}`));
    s.handleLine(req('{"type":"cas","msg_id":5,"key":"k","from":3,"to":-1e400}'));
    s.handleLine(req('{"type":"read","msg_id":6,"key":"k"}'));
    await s.idle();
    const byReply = new Map(sink.lines.map((l) => JSON.parse(l) as Out).map((m) => [m.body['in_reply_to'], m.body]));
    expect(byReply.get(2)).toMatchObject({ type: 'write_ok' });
    for (const id of [3, 4, 5]) expect(byReply.get(id)).toMatchObject({ type: 'error', code: 12 });
    expect(byReply.get(6)).toMatchObject({ type: 'read_ok', value: 3 });
    await s.end();
  });
});
