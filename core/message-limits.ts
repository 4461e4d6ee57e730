/**
 * The largest gRPC message the server accepts and sends by default
 * (`--max-message-bytes`); clients accept answers this large by default.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 ** 2;
