import { describe, expect, it } from "vitest";
import { METHOD_POLICIES, type CacheMethod } from "../../core/method-policy.js";
import { Status } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { CACHE_SERVICE_RULES } from "../../server/security/access-control.js";

describe("method policies (core/method-policy.ts)", () => {
  it("declare every RPC of the contract, and nothing else", () => {
    expect(Object.keys(METHOD_POLICIES).sort()).toEqual(CacheService.methods.map((m) => m.localName).sort());
  });

  it("give the server's access rules: the same right for every method", () => {
    for (const method of CacheService.methods) {
      expect(CACHE_SERVICE_RULES[method.name]?.right, method.name).toBe(METHOD_POLICIES[method.localName as CacheMethod].right);
    }
  });

  it("retry reads only, and InvalidateTags: a retried write could land after a later write, a retried invalidation only hides more", () => {
    const retried = CacheService.methods.filter((m) => METHOD_POLICIES[m.localName as CacheMethod].retryOnUnavailable).map((m) => m.name);
    expect(retried.sort()).toEqual(["Get", "GetMany", "Has", "InvalidateTags", "Stats"]);
  });

  it("let every method fail on bad input, credentials, deadline and an unavailable tier, and never INTERNAL or UNKNOWN", () => {
    for (const [method, policy] of Object.entries(METHOD_POLICIES)) {
      expect(policy.statuses, method).toEqual(expect.arrayContaining([Status.INVALID_ARGUMENT, Status.UNAUTHENTICATED, Status.DEADLINE_EXCEEDED, Status.UNAVAILABLE]));
      expect(policy.statuses, method).not.toContain(Status.INTERNAL);
      expect(policy.statuses, method).not.toContain(Status.UNKNOWN);
    }
  });
});
