import { describe, expect, it } from 'vitest';
import { MAX_EVENT_CHARS, sseParser } from './sse.js';

function parse(chunks: string[]) {
  const events: { id: string | undefined; data: string }[] = [];
  const p = sseParser((e) => events.push(e));
  for (const c of chunks) p.push(c);
  return { events, lastId: p.lastId };
}

describe('sseParser', () => {
  it('reads events split anywhere, skips heartbeats, keeps the last id', () => {
    const text = ': heartbeat\n\nid: 7\ndata: {"a":1}\n\ndata: x\ndata: y\n\nid: 9\ndata: {"b":2}\n\n';
    for (let cut = 0; cut < text.length; cut++) {
      const { events, lastId } = parse([text.slice(0, cut), text.slice(cut)]);
      expect(events).toEqual([
        { id: '7', data: '{"a":1}' },
        { id: undefined, data: 'x\ny' },
        { id: '9', data: '{"b":2}' },
      ]);
      expect(lastId).toBe('9');
    }
  });

  it('accepts \\r\\n and \\r line ends, also split between chunks', () => {
    expect(parse(['id: 1\r', '\ndata: a\r\n\r', '\n']).events).toEqual([{ id: '1', data: 'a' }]);
    expect(parse(['data: b\r\r', ': more\n']).events).toEqual([{ id: undefined, data: 'b' }]);
  });

  it('drops an event larger than the bound instead of growing without end', () => {
    const big = 'x'.repeat(MAX_EVENT_CHARS + 10);
    const { events } = parse([`data: ${big.slice(0, 1000)}`, big, '\n\nid: 2\ndata: ok\n\n']);
    expect(events).toEqual([{ id: '2', data: 'ok' }]);
    // a huge event without a line end is dropped too, and the stream goes on
    const { events: e2 } = parse([`data: ${big}`, '\n\ndata: next\n\n']);
    expect(e2).toEqual([{ id: undefined, data: 'next' }]);
  });
});
