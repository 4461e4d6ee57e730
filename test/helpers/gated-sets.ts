import { InterceptingCall, RequesterBuilder, type Interceptor } from "@grpc/grpc-js";

/** Holds every Set of the client (a unary call, or a Set a LeaseSession carries) back until `release()` is called. */
export function gatedSets(): { interceptor: Interceptor; release: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const interceptor: Interceptor = (options, nextCall) => {
    if (options.method_definition.path.endsWith("/LeaseSession")) {
      const requester = new RequesterBuilder()
        .withSendMessage((message: { call?: { case?: string } }, next) => {
          if (message.call?.case === "set") void gate.then(() => next(message));
          else next(message);
        })
        .build();
      return new InterceptingCall(nextCall(options), requester);
    }
    if (!options.method_definition.path.endsWith("/Set")) return new InterceptingCall(nextCall(options));
    const requester = new RequesterBuilder()
      .withStart((metadata, listener, next) => void gate.then(() => next(metadata, listener)))
      .withSendMessage((message, next) => void gate.then(() => next(message)))
      .withHalfClose((next) => void gate.then(() => next()))
      .build();
    return new InterceptingCall(nextCall(options), requester);
  };
  return { interceptor, release: () => open() };
}
