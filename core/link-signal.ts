const NOTHING_TO_UNLINK = (): void => {};

/**
 * Cancels `call` when `signal` aborts (at once if it already has); returns
 * the function that stops listening, to call when the call has ended.
 */
export function linkSignal(call: { cancel(): void }, signal: AbortSignal | undefined): () => void {
  if (!signal) return NOTHING_TO_UNLINK;
  if (signal.aborted) {
    call.cancel();
    return NOTHING_TO_UNLINK;
  }
  const onAbort = () => call.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}
