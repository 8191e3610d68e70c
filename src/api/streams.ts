// Long-lived responses (log follow, run watches): admitted under a cap of concurrent streams,
// each bounded in time and in unread bytes, and torn down on every way out (the client goes
// away, the attempt ends, the time is up, the server closes) so that no watcher or timer leaks.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './problems.ts';

export interface StreamLimits {
  /** Concurrent streams of the server (MESON_MAX_STREAMS, --max-streams; default 100). */
  maxStreams: number;
  /** Longest life of one stream in ms (MESON_STREAM_MAX_SECONDS, --stream-max-seconds; default 1 hour). */
  maxMs: number;
  /** Heartbeat period of event streams in ms (an SSE comment; default 15 s). */
  heartbeatMs: number;
  /** How often a followed log is read for new output, in ms (default 250). */
  pollMs: number;
  /** Bytes a client may leave unread before the stream is ended as too slow (default 1 MiB). */
  maxBufferedBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxStreams: 100,
  maxMs: 3_600_000,
  heartbeatMs: 15_000,
  pollMs: 250,
  maxBufferedBytes: 1024 * 1024,
};

/** One open stream: write to it until it closes; `onClose` callbacks free what it holds. */
export class Stream {
  closed = false;
  private readonly cleanups: (() => void)[] = [];
  private readonly reply: FastifyReply;
  private readonly limits: StreamLimits;
  private readonly release: (s: Stream) => void;
  constructor(reply: FastifyReply, limits: StreamLimits, release: (s: Stream) => void) {
    this.reply = reply;
    this.limits = limits;
    this.release = release;
  }

  /** Writes `chunk`; false when the stream is (now) closed. Ends a stream whose client reads too slowly. */
  write(chunk: string | Buffer): boolean {
    if (this.closed) return false;
    const raw = this.reply.raw;
    raw.write(chunk);
    if (raw.writableLength > this.limits.maxBufferedBytes) this.close();
    return !this.closed;
  }

  /** True when the client has left more than half the allowed bytes unread (a writer waits). */
  behind(): boolean {
    return this.reply.raw.writableLength > this.limits.maxBufferedBytes / 2;
  }

  /** Resolves once the client has read enough that the stream is no longer behind, or it closed. */
  drained(): Promise<void> {
    if (this.closed || !this.behind()) return Promise.resolve();
    const raw = this.reply.raw;
    return new Promise((resolve) => {
      const done = () => {
        raw.off('drain', done);
        raw.off('close', done);
        resolve();
      };
      raw.on('drain', done);
      raw.on('close', done);
    });
  }

  /** Writes one server-sent event (`data:` of JSON, with `id:` when given). */
  event(data: unknown, id?: string): boolean {
    return this.write(`${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.cleanups.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // a failing cleanup must not keep the others from running
      }
    }
    this.release(this);
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }
}

export class StreamGate {
  private readonly open = new Set<Stream>();
  readonly limits: StreamLimits;
  constructor(limits: StreamLimits) {
    this.limits = limits;
  }

  /** How many streams are open (tests check that none leak). */
  get size(): number {
    return this.open.size;
  }

  /**
   * Starts a streaming response (429 when the cap is reached): `sse` for event streams (with
   * heartbeats), `text` for logs.
   */
  start(req: FastifyRequest, reply: FastifyReply, type: 'sse' | 'text'): Stream {
    if (this.open.size >= this.limits.maxStreams) {
      throw new ApiError(
        'API_TOO_MANY_REQUESTS',
        `too many open streams (${this.limits.maxStreams}, the server's --max-streams / MESON_MAX_STREAMS): retry later`,
      );
    }
    const stream = new Stream(reply, this.limits, (s) => this.open.delete(s));
    this.open.add(stream);
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': type === 'sse' ? 'text/event-stream; charset=utf-8' : 'text/plain; charset=utf-8',
      'cache-control': 'no-cache',
      // a stream's connection is not reused: closing the server never waits on one
      connection: 'close',
      'x-content-type-options': 'nosniff',
      ...(type === 'sse' ? { 'x-accel-buffering': 'no' } : {}),
    });
    const timer = setTimeout(() => stream.close(), this.limits.maxMs);
    stream.onClose(() => clearTimeout(timer));
    if (type === 'sse') {
      const beat = setInterval(() => stream.write(': heartbeat\n\n'), this.limits.heartbeatMs);
      stream.onClose(() => clearInterval(beat));
    }
    // the client went away: free everything now, not at the next write
    const gone = () => stream.close();
    req.raw.once('close', gone);
    reply.raw.once('close', gone);
    stream.onClose(() => {
      req.raw.off('close', gone);
      reply.raw.off('close', gone);
    });
    return stream;
  }

  closeAll(): void {
    for (const s of [...this.open]) s.close();
  }
}
