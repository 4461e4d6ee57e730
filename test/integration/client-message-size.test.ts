import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "../../client/index.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe("message sizes the client accepts", () => {
  let t: TestServer;
  const keys = ["a", "b", "c", "d"];
  const values = new Map<string, Buffer>();

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    for (const key of keys) values.set(key, randomBytes(t.config.maxValueBytes));
    for (const [key, value] of values) await t.client.set(key, value);
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("by default, reads answers as large as the server's default message limit: GetMany of four 1 MiB values", async () => {
    expect(t.config.maxValueBytes).toBe(1024 ** 2);
    const found = await t.client.getMany<Buffer>(keys);
    expect([...found.keys()]).toEqual(keys);
    for (const key of keys) expect(found.get(key)!.equals(values.get(key)!), key).toBe(true);
  });

  it("honours maxReceiveMessageBytes", async () => {
    const small = t.newClient({ maxReceiveMessageBytes: 2 * 1024 ** 2 });
    expect((await small.getMany<Buffer>(keys.slice(0, 1))).size).toBe(1);
    await expect(small.getMany(keys)).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
  });
});
