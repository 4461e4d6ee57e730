import { Client } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { RpcError } from "../../core/rpc-error.js";
import type { ConnectionOptions } from "./cli-args.js";
import { callMetadata, channelCredentials } from "./cli-connection.js";

/** Asks grpc.health.v1.Health/Check about `service` ("" = the whole server); resolves with the status name, e.g. "SERVING". */
export async function checkHealth(options: ConnectionOptions, service: string): Promise<string> {
  const check = healthService["Check"];
  if (check === undefined) throw new Error("grpc-health-check has no Check method");
  const client = new Client(options.address, channelCredentials(options));
  try {
    return await new Promise<string>((resolve, reject) => {
      client.makeUnaryRequest(
        check.path,
        check.requestSerialize,
        check.responseDeserialize,
        { service },
        callMetadata(options),
        { deadline: Date.now() + options.timeoutMs },
        (err, res) => {
          if (err) return reject(new RpcError(err.code, err.details));
          const status: unknown = typeof res === "object" && res !== null ? (res as { status?: unknown }).status : undefined;
          resolve(typeof status === "string" ? status : "UNKNOWN");
        },
      );
    });
  } finally {
    client.close();
  }
}
