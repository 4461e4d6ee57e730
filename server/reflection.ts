import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";

type ReflectionPackage = ConstructorParameters<typeof ReflectionService>[0];

/**
 * A server reflection service for the given proto files (and their imports),
 * built from protobuf-es's embedded descriptors: grpcurl and other-language
 * tools then work without the .proto files.
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
  const pkg = Object.fromEntries(
    files.flatMap((file) => file.services).map((service) => [service.typeName, { fileDescriptorProtos }]),
  ) as unknown as ReflectionPackage;
  return new ReflectionService(pkg);
}
