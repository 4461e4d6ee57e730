import { readFileSync } from "node:fs";
import { credentials, Metadata, type ChannelCredentials } from "@grpc/grpc-js";
import { CacheClient } from "../cache-client.js";
import type { ConnectionOptions } from "./cli-args.js";

/** The channel credentials the options ask for: TLS when a --tls-* file is given, else plaintext. */
export function channelCredentials(options: ConnectionOptions): ChannelCredentials {
  const tls = options.tls;
  if (tls === undefined) return credentials.createInsecure();
  const read = (file: string | undefined) => (file === undefined ? null : readFileSync(file));
  return credentials.createSsl(read(tls.ca), read(tls.key), read(tls.cert));
}

/** Call metadata carrying the token, if any. */
export function callMetadata(options: ConnectionOptions): Metadata {
  const metadata = new Metadata();
  if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
  return metadata;
}

/** A CacheClient for the verbs that the SDK covers (get, set, delete, stats). */
export function cacheClient(options: ConnectionOptions): CacheClient {
  return new CacheClient({
    address: options.address,
    credentials: channelCredentials(options),
    timeoutMs: options.timeoutMs,
    ...(options.namespace !== undefined && { namespace: options.namespace }),
    ...(options.token !== undefined && { token: options.token }),
  });
}
