import { readFileSync } from "node:fs";
import { credentials, Metadata, type ChannelCredentials } from "@grpc/grpc-js";
import { CacheClient } from "../cache-client.js";
import { UsageError, type ConnectionOptions } from "./cli-args.js";
import { storedBytesSerializer } from "./cli-values.js";

/** The channel credentials the options ask for: TLS when a --tls-* file is given, else plaintext. */
export function channelCredentials(options: ConnectionOptions): ChannelCredentials {
  const tls = options.tls;
  if (tls === undefined) return credentials.createInsecure();
  const read = (flag: string, file: string | undefined) => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${flag} ${JSON.stringify(file)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const ca = read("--tls-ca", tls.ca);
  const key = read("--tls-key", tls.key);
  const cert = read("--tls-cert", tls.cert);
  try {
    return credentials.createSsl(ca, key, cert);
  } catch (err) {
    throw new UsageError(`invalid TLS files: ${err instanceof Error ? err.message : String(err)}`);
  }
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
    serializer: storedBytesSerializer,
    ...(options.namespace !== undefined && { namespace: options.namespace }),
    ...(options.token !== undefined && { token: options.token }),
  });
}
