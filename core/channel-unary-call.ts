import { Metadata, status, type Client, type Deadline, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { linkSignal } from "./link-signal.js";

/** What {@link channelUnaryCall} needs of one call. */
export interface ChannelUnaryCall<O> {
  /** grpc-js's client, whose channel carries the call. */
  client: Client;
  /** "/package.Service/Method". */
  path: string;
  /** The request, encoded here so that a failure is the call's, as makeUnaryRequest reports it. */
  encode: () => Buffer;
  decode: (bytes: Buffer) => O;
  metadata: Metadata;
  /** The call's deadline (undefined: none), read first; what it throws rejects the call. */
  deadline: () => Deadline | undefined;
  signal: AbortSignal | undefined;
}

/**
 * One unary call made on the client's channel directly (grpc-js's public
 * `Channel.createCall`), for clients without interceptors. It does what
 * `Client.makeUnaryRequest` does with no interceptors, and gives the same
 * errors, without the per-call layers that only interceptors and the
 * call-event API need (argument checks, the call EventEmitter, the
 * interceptor chain, and an Error captured for its stack on every call):
 * about a tenth of a Get's client CPU on loopback (bench/README.md).
 *
 * Resolves with the response; rejects with the call's status as a grpc-js
 * ServiceError (what makeUnaryRequest's callback gets), made where grpc-js
 * reports it, so its stack does not tell the caller's (see
 * {@link isServiceError}).
 */
export function channelUnaryCall<O>(call: ChannelUnaryCall<O>): Promise<O> {
  return new Promise((resolve, reject) => {
    const deadline = call.deadline() ?? Infinity;
    let request: Buffer;
    try {
      request = call.encode();
    } catch (err) {
      reject(serviceError({ code: status.INTERNAL, details: `Request message serialization failure: ${messageOf(err)}`, metadata: new Metadata() }));
      return;
    }
    const channelCall = call.client.getChannel().createCall(call.path, deadline, undefined, null, undefined);
    let response: { value: O } | undefined;
    let readError: StatusObject | undefined;
    let settled = false;
    let unlink: (() => void) | undefined;
    channelCall.start(call.metadata, {
      onReceiveMetadata: () => {},
      onReceiveMessage: (message: Buffer) => {
        try {
          response = { value: call.decode(message) };
        } catch (err) {
          readError = { code: status.INTERNAL, details: `Response message parsing error: ${messageOf(err)}`, metadata: new Metadata() };
          channelCall.cancelWithStatus(readError.code, readError.details);
        }
      },
      onReceiveStatus: (received: StatusObject) => {
        if (settled) return;
        settled = true;
        unlink?.();
        const outcome = readError ?? received;
        if (outcome.code !== status.OK) reject(serviceError(outcome));
        else if (response === undefined) reject(serviceError({ code: status.UNIMPLEMENTED, details: "No message received", metadata: outcome.metadata }));
        else resolve(response.value);
      },
    });
    channelCall.startRead();
    channelCall.sendMessageWithContext({}, request);
    channelCall.halfClose();
    // Last, as makeUnaryRequest's callers link it: a signal that throws here fails the promise, not the call.
    if (call.signal !== undefined) unlink = linkSignal({ cancel: () => channelCall.cancelWithStatus(status.CANCELLED, "Cancelled on client") }, call.signal);
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const SERVICE_ERRORS = new WeakSet<ServiceError>();

/** The error grpc-js's callErrorFromStatus makes of a status. */
function serviceError(outcome: StatusObject): ServiceError {
  const message = `${outcome.code} ${status[outcome.code]}: ${outcome.details}`;
  const err: ServiceError = Object.assign(new Error(message), { code: outcome.code, details: outcome.details, metadata: outcome.metadata });
  SERVICE_ERRORS.add(err);
  return err;
}

/** Whether `err` is a call's status as {@link channelUnaryCall} rejects with it (other rejections are the caller's own errors). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && SERVICE_ERRORS.has(err as ServiceError);
}
