/**
 * RecordIO framing of the Mesos v1 scheduler event stream: each record is an ASCII decimal byte
 * count, one LF, then exactly that many payload bytes (one JSON document). Chunk boundaries carry
 * no meaning (proxies move them), so the decoder works on bytes and keeps partial state between
 * chunks: a length prefix or a multi-byte UTF-8 character may be split anywhere.
 */

/** Default bound on one record's payload; a larger length prefix fails before any byte is buffered. */
export const DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024;

export type RecordIoErrorCode =
  | 'RECORDIO_BAD_LENGTH'
  | 'RECORDIO_TOO_LARGE'
  | 'RECORDIO_TRUNCATED'
  | 'RECORDIO_BAD_UTF8'
  | 'RECORDIO_BAD_JSON';

export class RecordIoError extends Error {
  readonly code: RecordIoErrorCode;
  constructor(code: RecordIoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordIoError';
    this.code = code;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const ZERO = 0x30;
const NINE = 0x39;
/** A uint64 has at most 20 decimal digits; more (leading zeros included) is garbage. */
const MAX_LENGTH_DIGITS = 20;

export interface RecordIoDecoderOptions {
  /** Largest payload accepted, in bytes (default DEFAULT_MAX_RECORD_BYTES). */
  maxRecordBytes?: number;
}

/**
 * Incremental decoder. `push` returns the records completed by a chunk; after an error the decoder
 * stays failed (the stream is out of sync and cannot be trusted again) and rethrows it.
 */
export class RecordIoDecoder {
  readonly maxRecordBytes: number;
  #digits = 0;
  #length = 0;
  #inPayload = false;
  #parts: Uint8Array[] = [];
  #have = 0;
  #failed: RecordIoError | undefined;
  /** Bytes consumed so far, for error messages. */
  #offset = 0;

  constructor(opts: RecordIoDecoderOptions = {}) {
    const max = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`maxRecordBytes must be a positive integer`);
    this.maxRecordBytes = max;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.#inPayload) {
        const take = Math.min(this.#length - this.#have, chunk.length - i);
        this.#parts.push(chunk.subarray(i, i + take));
        this.#have += take;
        i += take;
        if (this.#have === this.#length) {
          out.push(concat(this.#parts, this.#length));
          this.#parts = [];
          this.#have = 0;
          this.#length = 0;
          this.#digits = 0;
          this.#inPayload = false;
        }
        continue;
      }
      const b = chunk[i]!;
      if (b >= ZERO && b <= NINE) {
        this.#length = this.#length * 10 + (b - ZERO);
        this.#digits++;
        if (this.#digits > MAX_LENGTH_DIGITS) {
          return this.#fail(
            'RECORDIO_BAD_LENGTH',
            `record length prefix at byte ${this.#offset + i} is too long`,
          );
        }
        if (this.#length > this.maxRecordBytes) {
          return this.#fail(
            'RECORDIO_TOO_LARGE',
            `record length prefix at byte ${this.#offset + i} exceeds the limit of ${this.maxRecordBytes} bytes`,
          );
        }
      } else if (b === LF || (b === CR && this.#digits === 0)) {
        // Empty lines before a length are skipped, as in the Mesos docs' reader (CR tolerated there).
        if (b === LF && this.#digits > 0) {
          if (this.#length === 0) {
            return this.#fail('RECORDIO_BAD_LENGTH', `record length 0 at byte ${this.#offset + i}`);
          }
          this.#inPayload = true;
        }
      } else {
        return this.#fail(
          'RECORDIO_BAD_LENGTH',
          `expected a decimal record length at byte ${this.#offset + i}, got ${describeByte(b)}`,
        );
      }
      i++;
    }
    this.#offset += chunk.length;
    return out;
  }

  /** Whether the decoder is between records (nothing partial buffered). */
  get idle(): boolean {
    return !this.#inPayload && this.#digits === 0;
  }

  /** Ends the stream: throws RECORDIO_TRUNCATED if a record (or its length) was cut short. */
  end(): void {
    if (this.#failed) throw this.#failed;
    if (!this.idle) {
      this.#fail(
        'RECORDIO_TRUNCATED',
        this.#inPayload
          ? `stream ended ${this.#length - this.#have} bytes short of a ${this.#length}-byte record`
          : 'stream ended inside a record length',
      );
    }
  }

  #fail(code: RecordIoErrorCode, message: string): never {
    this.#failed = new RecordIoError(code, message);
    this.#parts = [];
    throw this.#failed;
  }
}

function describeByte(b: number): string {
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const encoder = new TextEncoder();

/** One record: the payload's UTF-8 byte length, LF, the payload. */
export function encodeRecord(payload: string | Uint8Array): Uint8Array {
  const body = typeof payload === 'string' ? encoder.encode(payload) : payload;
  if (body.length === 0) throw new RangeError('a RecordIO record cannot be empty');
  const head = encoder.encode(`${body.length}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/** A JSON value as one record. */
export function encodeJsonRecord(value: unknown): Uint8Array {
  return encodeRecord(JSON.stringify(value));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A record's payload as JSON; invalid UTF-8 and invalid JSON are errors, never replaced silently. */
export function decodeJsonRecord(record: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(record);
  } catch (cause) {
    throw new RecordIoError('RECORDIO_BAD_UTF8', `record of ${record.length} bytes is not valid UTF-8`, {
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new RecordIoError('RECORDIO_BAD_JSON', `record of ${record.length} bytes is not JSON`, { cause });
  }
}
