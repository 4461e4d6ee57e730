import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { MAX_CURSOR_BYTES, tooManyCursors } from "../../server/rpc/watch-request-guard.js";

const encode = (cursors: { namespace: string; streamId?: string; afterSeq?: bigint }[]) => toBinary(WatchRequestSchema, create(WatchRequestSchema, { cursors }));

describe("tooManyCursors: counting a Watch request's cursors without decoding it", () => {
  it("counts cursors, duplicates included, and lets the limit through", () => {
    const cursors = Array.from({ length: 10 }, (_, i) => ({ namespace: `ns${i}` }));
    expect(tooManyCursors(encode(cursors), 10)).toBeUndefined();
    expect(tooManyCursors(encode([...cursors, { namespace: "ns0" }]), 10)).toBe("a Watch may name at most max-watch-namespaces (10) namespaces; this one names 11");
    expect(tooManyCursors(encode([]), 1)).toBeUndefined();
  });

  it("the largest cursor a server can have handed out fits MAX_CURSOR_BYTES", () => {
    const largest = { namespace: "n".repeat(64), streamId: crypto.randomUUID(), afterSeq: 2n ** 64n - 1n };
    expect(encode([largest]).length).toBeLessThanOrEqual(MAX_CURSOR_BYTES);
    expect(tooManyCursors(encode(Array.from({ length: 100 }, () => largest)), 100)).toBeUndefined();
  });

  it("refuses a request longer than the limit's worth of cursors by its size alone", () => {
    expect(tooManyCursors(new Uint8Array(10 * MAX_CURSOR_BYTES + 1), 10)).toMatch(/^a Watch may name at most max-watch-namespaces \(10\) namespaces; this request is 1281 bytes/);
  });

  it("leaves malformed bytes to the decoder", () => {
    expect(tooManyCursors(new Uint8Array([0x0a, 0x7f]), 10)).toBeUndefined(); // a length past the end
  });
});
