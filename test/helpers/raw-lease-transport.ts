import type { LeaseSessionTransport } from "../../client/lease-session.js";
import type { ServiceClient } from "../../core/grpc-adapter.js";
import type { CacheService } from "../../gen/tiercache/v1/cache_pb.js";

/** A LeaseSession transport over a bare generated client: its stream and unary calls, no metadata; `extra` adds or overrides. */
export function rawLeaseTransport(raw: ServiceClient<typeof CacheService>, extra: Partial<LeaseSessionTransport> = {}): LeaseSessionTransport {
  return {
    open: (requests, options) => raw.leaseSession(requests, options),
    unary: { getOrLease: (r, o) => raw.getOrLease(r, o), set: (r, o) => raw.set(r, o), releaseLease: (r, o) => raw.releaseLease(r, o) },
    callOptions: () => ({}),
    ...extra,
  };
}
