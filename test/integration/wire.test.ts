import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Client, credentials, loadPackageDefinition, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const require = createRequire(import.meta.url);

/** Sends raw bytes to a unary method, as a client in another language (or an attacker) could. */
function rawUnary(address: string, path: string, body: Buffer): Promise<{ err: ServiceError | null; res?: Buffer }> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), {}, (err, res) => {
      client.close();
      resolve({ err, ...(res && { res }) });
    });
  });
}

describe("the wire: malformed input, health and reflection", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("answers undecodable request bytes with INVALID_ARGUMENT, not INTERNAL", async () => {
    for (const body of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x10, 0x41]), Buffer.from([0x12])]) {
      const { err } = await rawUnary(t.server.address, "/tiercache.v1.CacheService/Get", body);
      expect(err?.code).toBe(status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/malformed tiercache\.v1\.GetRequest/);
    }
    expect(await t.client.get("still-up")).toBeUndefined();
  });

  it("answers an unknown method with UNIMPLEMENTED", async () => {
    const { err } = await rawUnary(t.server.address, "/tiercache.v1.CacheService/Nope", Buffer.alloc(0));
    expect(err?.code).toBe(status.UNIMPLEMENTED);
  });

  it("serves grpc.health.v1 for the whole server and for CacheService", async () => {
    const healthProto = require.resolve("grpc-health-check/proto/health/v1/health.proto");
    const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & Record<string, Function> } } };
    };
    const health = new pkg.grpc.health.v1.Health(t.server.address, credentials.createInsecure());
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        health.Check!({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
      );
    expect(await check("")).toBe("SERVING");
    expect(await check("tiercache.v1.CacheService")).toBe("SERVING");
    health.close();
  });

  it("serves reflection so tools can list and describe the service without the proto", async () => {
    const reflectionProto = join(dirname(require.resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto");
    const pkg = loadPackageDefinition(loadSync(reflectionProto, { longs: String, enums: String, defaults: true, oneofs: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & Record<string, Function> } } };
    };
    const reflection = new pkg.grpc.reflection.v1.ServerReflection(t.server.address, credentials.createInsecure());
    const ask = (request: object) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const call = reflection.ServerReflectionInfo!();
        call.on("data", (res: Record<string, unknown>) => {
          resolve(res);
          call.end();
        });
        call.on("error", reject);
        call.write(request);
      });
    const listed = (await ask({ listServices: "" })) as { listServicesResponse: { service: { name: string }[] } };
    const names = listed.listServicesResponse.service.map((s) => s.name);
    expect(names).toContain("tiercache.v1.CacheService");
    const described = (await ask({ fileContainingSymbol: "tiercache.v1.CacheService" })) as {
      fileDescriptorResponse: { fileDescriptorProto: Buffer[] };
    };
    expect(described.fileDescriptorResponse.fileDescriptorProto.length).toBeGreaterThan(0);
    expect(Buffer.concat(described.fileDescriptorResponse.fileDescriptorProto).toString("latin1")).toContain("StreamGet");
    reflection.close();
  });
});
