/** Wire sizes of tiercache messages, so that echo baselines move the same bytes. */
import { importDist } from "./paths.js";

export const VALUE_BYTES = 1024;
export const CONTENT_TYPE = "application/octet-stream";

/** Encoded sizes of a Get request/response and of StreamGet messages carrying `batch` keys. */
export async function messageSizes({ valueBytes = VALUE_BYTES, batch = 500 } = {}) {
  const { create, toBinary } = await import("@bufbuild/protobuf");
  const pb = await importDist("gen/tiercache/v1/cache_pb.js");
  const key = (i) => `key:${String(i).padStart(8, "0")}`;
  const value = new Uint8Array(valueBytes);
  const size = (schema, init) => toBinary(schema, create(schema, init)).byteLength;
  const keys = Array.from({ length: batch }, (_, i) => key(i));
  return {
    getRequest: size(pb.GetRequestSchema, { namespace: "default", key: key(1) }),
    getResponse: size(pb.GetResponseSchema, { found: true, value, contentType: CONTENT_TYPE, tier: pb.Tier.MEMORY }),
    streamGetRequest: size(pb.StreamGetRequestSchema, { namespace: "default", keys }),
    streamGetResponse: size(pb.StreamGetResponseSchema, {
      entries: keys.map((k) => ({ key: k, value, contentType: CONTENT_TYPE, tier: pb.Tier.MEMORY })),
    }),
  };
}
