/**
 * A GET through an opossum breaker (RedisGuard's options), a per-attempt
 * timeout and the call's cancellation: the Redis-tier floor's failure policy
 * (echo-server.js `guardedGet`), also used by stack-min-server.js.
 */
export async function guardedGet(redis) {
  const { default: CircuitBreaker } = await import("opossum");
  const COMMAND_TIMEOUT_MS = 500;
  const breaker = new CircuitBreaker((attempt) => attempt(), {
    name: "redis",
    timeout: false,
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    resetTimeout: 2000,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
  });
  const attempt = (key, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("redis GET timed out")), ms);
      redis.getBuffer(key).then(
        (value) => (clearTimeout(timer), resolve(value)),
        (err) => (clearTimeout(timer), reject(err)),
      );
    });
  return (call, key) =>
    new Promise((resolve, reject) => {
      const left = Number(call.getDeadline()) - Date.now();
      if (call.cancelled || !(left > 0)) return reject(new Error("call ended before the GET"));
      const cancelled = () => reject(new Error("cancelled"));
      call.once("cancelled", cancelled);
      breaker.fire(() => attempt(key, Math.min(COMMAND_TIMEOUT_MS, left))).then(
        (value) => (call.removeListener("cancelled", cancelled), resolve(value)),
        (err) => (call.removeListener("cancelled", cancelled), reject(err)),
      );
    });
}
