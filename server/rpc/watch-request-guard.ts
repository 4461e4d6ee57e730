import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";

const WATCH_PATH = `/${CacheService.typeName}/${CacheService.method.watch.name}`;
/** Field number of `WatchRequest.cursors`. */
const CURSORS_FIELD = 1;

/**
 * Most bytes one encoded cursor takes: its tag and length (3), a namespace of
 * 64 characters (66), the server's stream id, a 36-character UUID (38), and a
 * uint64 sequence number (11), rounded up.
 */
export const MAX_CURSOR_BYTES = 128;

/**
 * Why a Watch request of these bytes names more than `maxNamespaces` cursors,
 * or undefined when it does not (or is malformed: the decoder will say so).
 * O(1) for an oversized request, O(cursors) otherwise, without decoding.
 */
export function tooManyCursors(bytes: Uint8Array, maxNamespaces: number): string | undefined {
  if (bytes.length > maxNamespaces * MAX_CURSOR_BYTES) {
    return `a Watch may name at most max-watch-namespaces (${maxNamespaces}) namespaces; this request is ${bytes.length} bytes, more than that many need (${MAX_CURSOR_BYTES} bytes each)`;
  }
  let cursors = 0;
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === CURSORS_FIELD) cursors++;
      reader.skip(wireType, field);
    }
  } catch {
    return undefined;
  }
  return cursors > maxNamespaces ? `a Watch may name at most max-watch-namespaces (${maxNamespaces}) namespaces; this one names ${cursors}` : undefined;
}

/**
 * A grpc-js server interceptor that refuses a Watch request naming more than
 * `maxNamespaces` cursors with RESOURCE_EXHAUSTED before it is decoded: a
 * request of the largest legal message size holds a million cursors, and
 * decoding them alone would hold the event loop for seconds. The adapter hands
 * requests through as raw bytes (it decodes in the handler), so the interceptor
 * sees the encoded message. The Watch handler checks the decoded request again.
 */
export function watchRequestGuard(maxNamespaces: number): ServerInterceptor {
  return (method, call) => {
    // Handing the call through is what a pass-through ServerInterceptingCall would do, without allocating one.
    if (method.path !== WATCH_PATH) return call as ServerInterceptingCall;
    const guarded: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMessage: (message: unknown, pass: (message: unknown) => void) => {
            const problem = message instanceof Uint8Array ? tooManyCursors(message, maxNamespaces) : undefined;
            if (problem === undefined) pass(message);
            else guarded.sendStatus({ code: status.RESOURCE_EXHAUSTED, details: problem });
          },
        }),
    });
    return guarded;
  };
}
