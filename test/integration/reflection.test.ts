import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { credentials, loadPackageDefinition, type Client, type ClientDuplexStream } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const require = createRequire(import.meta.url);

type ReflectionStream = ClientDuplexStream<object, Record<string, unknown>>;
type ReflectionClient = Client & { ServerReflectionInfo(): ReflectionStream };

/** A grpc.reflection.v1 client, as grpcurl uses. */
function reflectionClient(address: string): ReflectionClient {
  const proto = join(dirname(require.resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto");
  const pkg = loadPackageDefinition(loadSync(proto, { longs: String, enums: String, defaults: true, oneofs: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => ReflectionClient } } };
  };
  return new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
}

function ask(client: ReflectionClient, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (res: Record<string, unknown>) => {
      resolve(res);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  });
}

describe("server reflection", () => {
  let t: TestServer;
  let client: ReflectionClient;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    client = reflectionClient(t.server.address);
  });
  afterAll(async () => {
    client?.close();
    await t?.dispose();
  });

  it("lists the health service beside CacheService", async () => {
    const listed = (await ask(client, { listServices: "" })) as { listServicesResponse: { service: { name: string }[] } };
    const names = listed.listServicesResponse.service.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["tiercache.v1.CacheService", "grpc.health.v1.Health"]));
  });

  it("describes grpc.health.v1.Health, so grpcurl can call Check without the proto", async () => {
    const described = (await ask(client, { fileContainingSymbol: "grpc.health.v1.Health" })) as {
      fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
      errorResponse?: { errorMessage: string };
    };
    expect(described.errorResponse).toBeUndefined();
    const bytes = Buffer.concat(described.fileDescriptorResponse!.fileDescriptorProto).toString("latin1");
    expect(bytes).toContain("HealthCheckRequest");
    expect(bytes).toContain("grpc.health.v1");
  });
});
