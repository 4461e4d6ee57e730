import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { createSecureContext } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import type { ServerConfig } from "../config.js";

/** The settings that decide how exposed a server is. */
export type ExposureSettings = Pick<ServerConfig, "host" | "tlsCert" | "tlsKey" | "tlsCa" | "allowInsecure" | "tokens" | "allowUnauthenticated">;

/** A configuration the server refuses to start with: the option to change, and one line saying why. */
export interface SecurityProblem {
  option: string;
  message: string;
}

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped loopback) and "localhost"; any other name counts as exposed. */
export function isLoopback(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost") return true;
  if (isIPv4(name)) return name.startsWith("127.");
  if (isIPv6(name)) {
    if (name === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(name)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(name);
    return mapped !== null && mapped[1]!.startsWith("127.");
  }
  return false;
}

/** A config parser reading a PEM file (`what` = "certificate" or "private key"); never quotes the file's contents. */
export function pemFile(what: "certificate" | "private key"): (raw: string) => Buffer {
  return (raw) => {
    const path = raw.trim();
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    const marker = what === "certificate" ? "-----BEGIN CERTIFICATE-----" : "PRIVATE KEY-----";
    if (!pem.includes(marker)) throw new Error(`${JSON.stringify(path)} holds no PEM ${what}`);
    return pem;
  };
}

/** A config parser for on/off switches: true/false, 1/0, yes/no, on/off. */
export function switchValue(raw: string): boolean | undefined {
  const value = raw.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  return undefined;
}

/**
 * The first reason not to start with these settings: incomplete or unusable
 * TLS material, plaintext on a non-loopback address without
 * `--allow-insecure`, or no access tokens on a non-loopback address without
 * `--allow-unauthenticated`. Checked before anything is opened or bound.
 */
export function securityProblem(config: ExposureSettings): SecurityProblem | undefined {
  const { tlsCert, tlsKey, tlsCa, host } = config;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    return { option: tlsCert ? "--tls-key" : "--tls-cert", message: "--tls-cert and --tls-key (TIERCACHE_TLS_CERT, TIERCACHE_TLS_KEY) go together: give both or neither" };
  }
  if (tlsCa !== undefined && tlsCert === undefined) {
    return { option: "--tls-ca", message: "--tls-ca (mutual TLS) needs --tls-cert and --tls-key too" };
  }
  if (tlsCert !== undefined && tlsKey !== undefined) {
    try {
      createSecureContext({ cert: tlsCert, key: tlsKey, ...(tlsCa && { ca: tlsCa }) });
    } catch (err) {
      return { option: "--tls-key", message: `unusable --tls-cert/--tls-key/--tls-ca: ${(err as Error).message}` };
    }
  }
  if (isLoopback(host)) return undefined;
  if (tlsCert === undefined && !config.allowInsecure) {
    return {
      option: "--allow-insecure",
      message: `refusing plaintext on non-loopback address ${host}: give --tls-cert and --tls-key (TIERCACHE_TLS_CERT, TIERCACHE_TLS_KEY), or --allow-insecure (TIERCACHE_ALLOW_INSECURE=true) to accept it`,
    };
  }
  if (config.tokens === undefined && !config.allowUnauthenticated) {
    return {
      option: "--allow-unauthenticated",
      message: `refusing to serve without access tokens on non-loopback address ${host}: give --tokens-file (or TIERCACHE_TOKENS), or --allow-unauthenticated (TIERCACHE_ALLOW_UNAUTHENTICATED=true) to accept it`,
    };
  }
  return undefined;
}

/** TLS when a certificate is configured (mutual TLS when a client CA is too), plaintext otherwise. */
export function serverCredentials(config: Pick<ServerConfig, "tlsCert" | "tlsKey" | "tlsCa">): ServerCredentials {
  const { tlsCert, tlsKey, tlsCa } = config;
  if (tlsCert === undefined || tlsKey === undefined) return ServerCredentials.createInsecure();
  // With a CA, grpc-js asks for a client certificate and Node's TLS refuses any it cannot verify against that CA.
  return ServerCredentials.createSsl(tlsCa ?? null, [{ cert_chain: tlsCert, private_key: tlsKey }], tlsCa !== undefined);
}

/** How a server's transport is secured, for the start-up log line. */
export function transportName(config: Pick<ServerConfig, "tlsCert" | "tlsCa">): "plaintext" | "tls" | "mtls" {
  if (config.tlsCert === undefined) return "plaintext";
  return config.tlsCa === undefined ? "tls" : "mtls";
}
