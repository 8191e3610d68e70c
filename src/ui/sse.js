// Server-sent events read from a fetch body (the API wants its token in a header, which
// EventSource cannot send). Pure parsing here; the I/O is in api.js.

/** Longest event the parser keeps (bytes of text): a longer one is dropped, so memory stays bounded. */
export const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/**
 * A parser for the text/event-stream format: feed it text as it arrives; `onEvent({id, data})`
 * is called for each complete event (comments such as heartbeats are skipped). `lastId` is the
 * id of the last event seen, where a reconnect resumes.
 * @param {(e: { id: string | undefined, data: string }) => void} onEvent
 */
export function sseParser(onEvent) {
  let buf = '';
  let data = [];
  let size = 0;
  let id;
  const parser = {
    lastId: undefined,
    /** @param {string} text */
    push(text) {
      buf += text;
      let nl = buf.search(/\r\n|\r|\n/);
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        const width = buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1;
        // a lone \r at the end may be the first half of \r\n: wait for more text
        if (buf[nl] === '\r' && nl + 1 === buf.length) break;
        buf = buf.slice(nl + width);
        onLine(line);
        nl = buf.search(/\r\n|\r|\n/);
      }
      if (buf.length > MAX_EVENT_CHARS) {
        buf = '';
        data = [];
        size = Number.POSITIVE_INFINITY;
      }
    },
  };
  function onLine(l) {
    if (l === '') {
      if (data.length && size <= MAX_EVENT_CHARS) {
        if (id !== undefined) parser.lastId = id;
        onEvent({ id, data: data.join('\n') });
      }
      data = [];
      size = 0;
      id = undefined;
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      size += value.length;
      if (size <= MAX_EVENT_CHARS) data.push(value);
    } else if (field === 'id' && !value.includes('\0')) id = value;
  }
  return parser;
}
