import type { CallScope } from "./durable-tier.js";

/**
 * Cancellation of a call scope on hot paths. A scope that has `onCancel`
 * (the server's call context) is asked directly: creating its AbortSignal and
 * adding a listener costs several microseconds per call, which a Redis-tier
 * Get paid up to three times. Other scopes (tests, internal callers) fall
 * back to `signal`.
 */

/** Why `scope`'s call ended early, or undefined while it runs. */
export function cancelReasonOf(scope: CallScope | undefined): unknown {
  if (scope === undefined) return undefined;
  if (scope.onCancel !== undefined) return scope.cancelReason;
  const signal = scope.signal;
  return signal?.aborted ? signal.reason : undefined;
}

/** Whether `scope`'s call ended early. */
export function cancelled(scope: CallScope | undefined): boolean {
  return cancelReasonOf(scope) !== undefined;
}

/** Whether `scope`'s call ended early or its deadline has passed (the timer that cancels it may not have run yet). */
export function callEnded(scope: CallScope | undefined): boolean {
  return cancelled(scope) || (scope?.deadline ?? Infinity) <= Date.now();
}

/** Calls `listener` with the signal's reason once it aborts; returns a function that stops listening. */
export function listenToAbort(signal: AbortSignal, listener: (reason: unknown) => void): () => void {
  const onAbort = () => listener(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/**
 * Settles like `promise`, or rejects with `toError(reason)` as soon as
 * `scope`'s call ends early (at once if it has). `promise` itself keeps
 * running; when nobody waits for it any more, its failure is dropped here
 * rather than left unhandled (which would end the process).
 */
export function raceCancel<T>(promise: Promise<T>, scope: CallScope | undefined, toError: (reason: unknown) => unknown = (reason) => reason): Promise<T> {
  if (scope === undefined) return promise;
  const reason = cancelReasonOf(scope);
  if (reason !== undefined) {
    promise.catch(ignore);
    return Promise.reject(toError(reason));
  }
  const listen = listenerOf(scope);
  if (listen === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const stop = listen((why) => reject(toError(why)));
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (err: unknown) => {
        stop();
        reject(err);
      },
    );
  });
}

function listenerOf(scope: CallScope): ((listener: (reason: unknown) => void) => () => void) | undefined {
  if (scope.onCancel !== undefined) return (listener) => scope.onCancel!(listener);
  const signal = scope.signal;
  if (signal === undefined) return undefined;
  return (listener) => listenToAbort(signal, listener);
}

function ignore(): void {}
