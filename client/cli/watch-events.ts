import { CacheService, WatchEventKind } from "../../gen/tiercache/v1/cache_pb.js";
import { createClient } from "../../core/grpc-adapter.js";
import type { ConnectionOptions } from "./cli-args.js";
import { callMetadata, channelCredentials } from "./cli-connection.js";

/** One Watch event as `tiercache watch` prints it (a JSON line). */
export interface WatchLine {
  kind: string;
  namespace: string;
  keys: string[];
  seq: number;
}

/**
 * Streams the Watch events of the options' namespace to `print` (heartbeats
 * left out) until `signal` aborts (resolves "interrupted") or the server ends
 * the stream with OK, as it does when it shuts down (resolves "closed"); a
 * failure of the stream rejects.
 */
export async function watchEvents(options: ConnectionOptions, print: (line: WatchLine) => void, signal: AbortSignal): Promise<"interrupted" | "closed"> {
  const rpc = createClient(CacheService, options.address, channelCredentials(options));
  try {
    const events = rpc.watch({ cursors: [{ namespace: options.namespace ?? "" }] }, { signal, deadline: Infinity, metadata: callMetadata(options) });
    for await (const event of events) {
      if (event.kind === WatchEventKind.HEARTBEAT) continue;
      print({ kind: WatchEventKind[event.kind] ?? String(event.kind), namespace: event.namespace, keys: [...event.keys], seq: Number(event.seq) });
    }
    return signal.aborted ? "interrupted" : "closed";
  } catch (err) {
    if (!signal.aborted) throw err;
    return "interrupted";
  } finally {
    rpc.close();
  }
}
