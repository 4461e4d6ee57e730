#!/usr/bin/env python3
"""Calls a tiercache server from Python, with no generated code.

Usage: cache_client.py ADDRESS DESCRIPTOR_SET [--namespace NS] [--expect JSON]

DESCRIPTOR_SET is a FileDescriptorSet of proto/tiercache/v1/cache.proto, e.g.
from `npx buf build -o cache.binpb --as-file-descriptor-set --path
proto/tiercache/v1/cache.proto`. Message classes are built from it at run time
and the RPCs are called with plain grpc channel methods, as any client without
generated stubs would.

In namespace NS (default "interop") it:
  - Set:       writes "py-written" as plain JSON (content type application/json);
  - Get:       reads "ts-written" and checks that json.loads of its bytes equals
               the --expect JSON;
  - GetMany:   reads ["ts-written", "py-written", "missing"];
  - StreamGet: writes "py-bulk:0".."py-bulk:199" (1 KiB each) with SetMany,
               sends three batches of keys on one bidi stream and reads the
               answers (each may come in several messages; the third, of
               the py-bulk keys, does);
  - Tags:      writes "py-tagged" with the tag "py-tag", reads it, invalidates
               the tag with InvalidateTags, and checks that it is gone.

It prints one JSON line with the results and exits 0 when every check held,
1 when a check failed, 2 on a gRPC error, 3 when grpc or protobuf is missing.
Needs python3-grpcio and python3-protobuf (protobuf 3.21 or later).
"""

import argparse
import json
import os
import sys

try:
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as err:
    print(json.dumps({"error": "missing-module", "details": str(err)}))
    print(
        f"cannot import grpc/protobuf ({err}): run `apt-get install python3-grpcio python3-protobuf`",
        file=sys.stderr,
    )
    sys.exit(3)

SERVICE = "tiercache.v1.CacheService"
CONTENT_TYPE_JSON = "application/json"
PY_VALUE = {"from": "python", "list": [1, 2.5, None, True], "text": "naïve ☃"}
TIMEOUT_S = 10
BULK_KEYS = 200


def message_classes(file_set):
    """Message classes by full name, e.g. "tiercache.v1.GetRequest"."""
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22 (Python package)
        pool = descriptor_pool.DescriptorPool()
        for file in file_set.file:  # dependencies come first in a descriptor set
            pool.Add(file)
        return {
            f"{file.package}.{message.name}": message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"{file.package}.{message.name}")
            )
            for file in file_set.file
            for message in file.message_type
        }
    return message_factory.GetMessages(file_set.file)  # protobuf 3.21 / 4.21


class CacheService:
    """One callable per RPC of CacheService, built from the descriptor set."""

    def __init__(self, channel, file_set):
        classes = message_classes(file_set)
        service = next(s for f in file_set.file for s in f.service if f"{f.package}.{s.name}" == SERVICE)
        self.messages = classes
        for method in service.method:
            request = classes[method.input_type.lstrip(".")]
            response = classes[method.output_type.lstrip(".")]
            path = f"/{SERVICE}/{method.name}"
            kind = {
                (False, False): channel.unary_unary,
                (False, True): channel.unary_stream,
                (True, False): channel.stream_unary,
                (True, True): channel.stream_stream,
            }[(method.client_streaming, method.server_streaming)]
            setattr(
                self,
                method.name,
                kind(path, request_serializer=request.SerializeToString, response_deserializer=response.FromString),
            )

    def message(self, name, **fields):
        return self.messages[f"tiercache.v1.{name}"](**fields)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("descriptor_set")
    parser.add_argument("--namespace", default="interop")
    parser.add_argument("--expect", default=None, help="JSON the value of ts-written must equal")
    args = parser.parse_args()

    with open(args.descriptor_set, "rb") as f:
        file_set = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    ns = args.namespace
    results = {"checks": {}}
    checks = results["checks"]

    with grpc.insecure_channel(args.address) as channel:
        cache = CacheService(channel, file_set)

        body = json.dumps(PY_VALUE, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        cache.Set(
            cache.message("SetRequest", namespace=ns, key="py-written", value=body, content_type=CONTENT_TYPE_JSON),
            timeout=TIMEOUT_S,
        )
        results["set"] = {"key": "py-written", "value": PY_VALUE}

        got = cache.Get(cache.message("GetRequest", namespace=ns, key="ts-written"), timeout=TIMEOUT_S)
        value = json.loads(got.value.decode("utf-8")) if got.found else None
        results["get"] = {"found": got.found, "content_type": got.content_type, "value": value}
        checks["get_found"] = got.found and got.content_type == CONTENT_TYPE_JSON
        if args.expect is not None:
            checks["get_equals_expected"] = value == json.loads(args.expect)

        many = cache.GetMany(
            cache.message("GetManyRequest", namespace=ns, keys=["ts-written", "py-written", "missing"]),
            timeout=TIMEOUT_S,
        )
        results["get_many"] = {e.key: json.loads(e.value.decode("utf-8")) for e in many.entries}
        checks["get_many_py_value"] = results["get_many"].get("py-written") == PY_VALUE

        # The third batch's values, 1 KiB each, take more than one message.
        bulk = [f"py-bulk:{i}" for i in range(BULK_KEYS)]
        entries = [cache.message("Entry", key=key, value=os.urandom(1024), content_type="application/octet-stream") for key in bulk]
        cache.SetMany(cache.message("SetManyRequest", namespace=ns, entries=entries), timeout=TIMEOUT_S)
        batches = [["ts-written", "missing"], ["py-written"], bulk]
        requests = (cache.message("StreamGetRequest", namespace=ns, keys=keys) for keys in batches)
        # A request's answer may come in several messages: it is complete once each of its distinct keys appeared once.
        distinct = [len(dict.fromkeys(keys)) for keys in batches]
        answers = []
        answer = {"found": [], "missing": []}
        messages = 0
        for message in cache.StreamGet(requests, timeout=TIMEOUT_S):
            messages += 1
            answer["found"] += [e.key for e in message.entries]
            answer["missing"] += list(message.missing)
            if len(answer["found"]) + len(answer["missing"]) == distinct[len(answers)]:
                answers.append(answer)
                answer = {"found": [], "missing": []}
        results["stream_get"] = answers
        checks["stream_get_every_answer"] = len(answers) == len(batches)
        checks["stream_get_split_answer"] = messages > len(batches)

        cache.Set(
            cache.message("SetRequest", namespace=ns, key="py-tagged", value=b"1", content_type=CONTENT_TYPE_JSON, tags=["py-tag", "org:7"]),
            timeout=TIMEOUT_S,
        )
        before = cache.Get(cache.message("GetRequest", namespace=ns, key="py-tagged"), timeout=TIMEOUT_S)
        cache.InvalidateTags(cache.message("InvalidateTagsRequest", namespace=ns, tags=["py-tag"]), timeout=TIMEOUT_S)
        after = cache.Get(cache.message("GetRequest", namespace=ns, key="py-tagged"), timeout=TIMEOUT_S)
        checks["tagged_found_before_invalidation"] = before.found
        checks["tagged_gone_after_invalidation"] = not after.found

    print(json.dumps(results, ensure_ascii=False))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as err:
        print(json.dumps({"error": err.code().name, "details": err.details()}))
        sys.exit(2)
