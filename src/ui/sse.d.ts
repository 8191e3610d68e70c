// Types of sse.js (plain JavaScript, served to the browser as is) for the tests.
export const MAX_EVENT_CHARS: number;
export function sseParser(onEvent: (e: { id: string | undefined; data: string }) => void): {
  lastId: string | undefined;
  push(text: string): void;
};
