import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe("streamGet and streamSet inputs", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(async () => {
    await ts.dispose();
  });

  it("streamGet and streamSet take any iterable, a string (its characters) and a generator too, batching them", async () => {
    expect(await ts.client.streamSet((function* () { for (const c of "xyz") yield [c, c.toUpperCase()] as const; })(), { batchSize: 2 })).toBe(3);
    const seen: [string, unknown][] = [];
    for await (const pair of ts.client.streamGet("xyzq", { batchSize: 3 })) seen.push(pair);
    expect(seen).toEqual([["x", "X"], ["y", "Y"], ["z", "Z"], ["q", undefined]]);
  });
});
