import { describe, expect, it } from 'vitest';
import { defaultOptions, parseServeArgs, ticksOf, UsageError } from '../../src/node/options.js';
import { LineSplitter, MemorySink, Outbox, parseLine, ProtocolError, validate } from '../../src/node/protocol.js';

describe('parseLine', () => {
  it('accepts a Maelstrom envelope', () => {
    const r = parseLine('{"src":"c1","dest":"n1","body":{"type":"read","msg_id":3,"key":1}}');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.msg).toEqual({ src: 'c1', dest: 'n1', body: { type: 'read', msg_id: 3, key: 1 } });
  });
  it('rejects non-JSON and non-objects without a reply', () => {
    for (const l of ['not json', '[1,2]', '42', 'null', '{"src":1,"body":{}}', '{"src":"c1","dest":"n1"}']) {
      const r = parseLine(l);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reply).toBeNull();
    }
  });
  it('answers a body without type when it has a msg_id', () => {
    const r = parseLine('{"src":"c1","dest":"n1","body":{"msg_id":7}}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reply).toEqual({ src: 'c1', dest: 'n1', msgId: 7 });
    const r2 = parseLine('{"src":"c1","dest":"n1","body":{"type":5,"msg_id":8}}');
    expect(!r2.ok && r2.reply?.msgId).toBe(8);
  });
  it('does not answer when msg_id is not an integer', () => {
    const r = parseLine('{"src":"c1","dest":"n1","body":{"type":"read","msg_id":"x"}}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reply).toBeNull();
  });
});

describe('validate', () => {
  it('checks presence and types', () => {
    expect(() => validate({ key: null }, { key: 'any' })).not.toThrow();
    expect(() => validate({}, { key: 'any' })).toThrow(ProtocolError);
    expect(() => validate({ n: 1.5 }, { n: 'int' })).toThrow(/integer/);
    expect(() => validate({ n: -1 }, { n: 'nonneg' })).toThrow(/non-negative/);
    expect(() => validate({ ids: ['a', 1] }, { ids: 'string[]' })).toThrow();
    expect(() => validate({ b: 'yes' }, {}, { b: 'bool' })).toThrow();
    expect(() => validate({}, {}, { b: 'bool' })).not.toThrow();
    try {
      validate({}, { key: 'any' });
    } catch (e) {
      expect((e as ProtocolError).code).toBe(12);
    }
  });
});

describe('Outbox', () => {
  it('numbers every message from 0, replies and sends alike', () => {
    const sink = new MemorySink();
    const out = new Outbox(sink, 'n1');
    out.reply('c0', 1, { type: 'init_ok' });
    out.send('n2', { type: 'raft_append_entries', term: 1 });
    out.error('c1', 5, 11, 'no leader');
    const msgs = sink.lines.map((l) => JSON.parse(l));
    expect(msgs).toEqual([
      { src: 'n1', dest: 'c0', body: { type: 'init_ok', in_reply_to: 1, msg_id: 0 } },
      { src: 'n1', dest: 'n2', body: { type: 'raft_append_entries', term: 1, msg_id: 1 } },
      { src: 'n1', dest: 'c1', body: { type: 'error', code: 11, text: 'no leader', in_reply_to: 5, msg_id: 2 } },
    ]);
    expect(out.sent).toBe(3);
  });
});

describe('LineSplitter', () => {
  it('splits chunks at newlines, keeps partial lines, handles CRLF and a last unterminated line', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('{"a":1}\n{"b"');
    s.push(':2}\r\n\n   \n{"c":3}');
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    s.end();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
});

describe('options', () => {
  it('has defaults that suit Maelstrom', () => {
    const o = defaultOptions();
    expect(o.dataDir).toBeNull();
    expect(o.dataRoot).toBeNull();
    expect(o.fsync).toBe(true);
    expect(o.preVote).toBe(true);
    expect(o.checkQuorum).toBe(true);
    const t = ticksOf(o);
    expect(t.electionTicks * o.tickMs).toBeGreaterThanOrEqual(500);
    expect(t.electionTicks * o.tickMs * 2).toBeLessThanOrEqual(1500);
    expect(t.heartbeatTicks * o.tickMs).toBe(100);
  });
  it('parses every kind of flag', () => {
    const o = parseServeArgs(['--data-root', '/tmp/x', '--fsync', 'false', '--chunk-size', '16KiB', '--snapshot-threshold', '50', '--snapshot-jitter', '0']);
    expect(o.dataRoot).toBe('/tmp/x');
    expect(o.fsync).toBe(false);
    expect(o.chunkSize).toBe(16384);
    expect(o.snapshotThreshold).toBe(50);
    expect(o.snapshotJitter).toBe(0);
    expect(parseServeArgs(['--pre-vote=false']).preVote).toBe(false);
  });
  it('rejects bad flags with a usage error', () => {
    expect(() => parseServeArgs(['--bogus', '1'])).toThrow(UsageError);
    expect(() => parseServeArgs(['--fsync', 'maybe'])).toThrow(/true or false/);
    expect(() => parseServeArgs(['--retain', 'x'])).toThrow(UsageError);
    expect(() => parseServeArgs(['--data-dir', 'a', '--data-root', 'b'])).toThrow(/exclude/);
    expect(() => parseServeArgs(['--election-timeout-ms', '100', '--heartbeat-ms', '100'])).toThrow(UsageError);
    expect(() => parseServeArgs(['positional'])).toThrow(UsageError);
  });
});
