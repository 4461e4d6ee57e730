import { describe, expect, it } from "vitest";
import { CacheClient, CorruptValueError, CONTENT_TYPE_TAGGED_JSON, jsonSerializer, LoaderTimeoutError, RpcError, UnserializableError } from "../../client/index.js";

describe("the client entry point exports every error its calls reject with", () => {
  it("a value that cannot be serialized rejects with UnserializableError (a TypeError) before any call", async () => {
    const client = new CacheClient({ address: "127.0.0.1:1" }); // never contacted
    try {
      const err = await client.set("k", { nested: [1, () => 1] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnserializableError);
      expect(err).toBeInstanceOf(TypeError);
      expect(err).toMatchObject({ name: "UnserializableError", path: ["", "nested", 1], message: 'cannot serialize a function value at value["nested"][1]' });
    } finally {
      client.close();
    }
  });

  it("exports CorruptValueError (undecodable stored values), RpcError and LoaderTimeoutError", () => {
    expect(() => jsonSerializer.decode(new TextEncoder().encode("{not json"), CONTENT_TYPE_TAGGED_JSON)).toThrow(CorruptValueError);
    expect(new RpcError(14, "down")).toBeInstanceOf(Error);
    expect(LoaderTimeoutError.prototype).toBeInstanceOf(Error);
  });
});
