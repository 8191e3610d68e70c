// Types of api.js (plain JavaScript, served to the browser as is) for the tests.
export const NS: string;
export const FINISHED: Set<string>;
export class ApiError extends Error {
  status: number;
  code: string | undefined;
}
export function getToken(): string;
export function setToken(token: string): void;
export function api(
  path: string,
  opts?: { method?: string; body?: unknown; text?: boolean; signal?: AbortSignal },
): Promise<unknown>;
export function streamText(path: string, onText: (text: string) => void, signal: AbortSignal): Promise<void>;
export function backoffMs(failures: number): number;
export function watch(
  path: string,
  opts: {
    onEvent: (e: Record<string, unknown>) => void;
    resourceVersion?: string;
    done?: () => boolean;
    resync?: () => Promise<unknown>;
    onError?: (err: Error) => void;
    onLive?: (live: boolean) => void;
  },
): () => void;
export function seg(s: unknown): string;
