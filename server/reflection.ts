import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import { service as healthService } from "grpc-health-check";

type ReflectionPackage = ConstructorParameters<typeof ReflectionService>[0];

/**
 * The encoded FileDescriptorProtos of grpc.health.v1, taken from the
 * definition grpc-health-check serves (proto-loader attaches them to each
 * method's request type), so that reflection describes exactly what is served.
 */
export function healthFileDescriptorProtos(): Buffer[] {
  const found = new Map<string, Buffer>();
  for (const method of Object.values(healthService)) {
    const requestType: unknown = (method as { requestType?: unknown }).requestType;
    const protos: unknown = typeof requestType === "object" && requestType !== null ? (requestType as { fileDescriptorProtos?: unknown }).fileDescriptorProtos : undefined;
    if (!Array.isArray(protos)) continue;
    for (const proto of protos) if (Buffer.isBuffer(proto)) found.set(proto.toString("base64"), proto);
  }
  if (found.size === 0) throw new Error("grpc-health-check's service definition carries no file descriptors");
  return [...found.values()];
}

/**
 * A server reflection service for the given proto files (and their imports),
 * built from protobuf-es's embedded descriptors, plus grpc.health.v1.Health,
 * which every tiercache server serves: grpcurl and other-language tools then
 * work without the .proto files.
 */
export function reflectionFor(files: readonly DescFile[]): ReflectionService {
  const all = new Map<string, DescFile>();
  const add = (file: DescFile) => {
    if (all.has(file.name)) return;
    all.set(file.name, file);
    file.dependencies.forEach(add);
  };
  files.forEach(add);
  const fileDescriptorProtos = [...all.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  const pkg = Object.fromEntries([
    ...files.flatMap((file) => file.services).map((service) => [service.typeName, { fileDescriptorProtos }] as const),
    ["grpc.health.v1.Health", { fileDescriptorProtos: healthFileDescriptorProtos() }] as const,
  ]) as unknown as ReflectionPackage;
  return new ReflectionService(pkg);
}
