import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "../../client/index.js";
import { ConfigError, defaultConfig, resolveConfig } from "../../server/config.js";
import { silentLogger } from "../../server/logger.js";
import { isLoopback, securityProblem } from "../../server/security/transport.js";
import { startServer } from "../../server/server.js";
import { generateCerts, type TestCerts } from "../helpers/certs.js";
import { startTestServer, tempDir } from "../helpers/test-server.js";

const TOKENS = JSON.stringify([{ token: "t".repeat(32), namespaces: ["*"], rights: ["read", "write", "admin"] }]);

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("TLS and mutual TLS", () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = generateCerts();
  });
  afterAll(() => certs.remove());

  it("serves a client that trusts the server's CA, and no plaintext client", async () => {
    const t = await startTestServer({ storage: "memory", tlsCert: certs.serverCert, tlsKey: certs.serverKey });
    try {
      const client = t.newClient({ tls: { ca: certs.ca } });
      await client.set("greeting", "hello");
      expect(await client.get("greeting")).toBe("hello");
      const byPath = t.newClient({ tls: { ca: certs.path("ca") } });
      expect(await byPath.get("greeting")).toBe("hello");

      const plaintext = t.newClient({ timeoutMs: 3000 });
      await expect(plaintext.get("greeting")).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      await t.dispose();
    }
  });

  it("a client that trusts another CA cannot connect (UNAVAILABLE)", async () => {
    const t = await startTestServer({ storage: "memory", tlsCert: certs.serverCert, tlsKey: certs.serverKey });
    try {
      const client = t.newClient({ tls: { ca: certs.otherCa }, timeoutMs: 3000 });
      await expect(client.get("k")).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      await t.dispose();
    }
  });

  it("with --tls-ca, requires a client certificate signed by that CA", async () => {
    const t = await startTestServer({ storage: "memory", tlsCert: certs.serverCert, tlsKey: certs.serverKey, tlsCa: certs.ca });
    try {
      const trusted = t.newClient({ tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
      await trusted.set("k", 1);
      expect(await trusted.get("k")).toBe(1);

      const noCert = t.newClient({ tls: { ca: certs.ca }, timeoutMs: 3000 });
      await expect(noCert.get("k")).rejects.toMatchObject({ code: Status.UNAVAILABLE });

      const stranger = t.newClient({ tls: { ca: certs.ca, cert: certs.otherClientCert, key: certs.otherClientKey }, timeoutMs: 3000 });
      await expect(stranger.get("k")).rejects.toMatchObject({ code: Status.UNAVAILABLE });
      expect(await trusted.get("k")).toBe(1); // the refusals did not disturb the server
    } finally {
      await t.dispose();
    }
  });

  it("reads PEM files from flags and environment, and refuses unusable TLS settings with one line", () => {
    const config = resolveConfig(["--tls-cert", certs.path("serverCert"), "--tls-key", certs.path("serverKey"), "--tls-ca", certs.path("ca")], {});
    expect(config.tlsCert?.equals(certs.serverCert)).toBe(true);
    expect(config.tlsCa?.equals(certs.ca)).toBe(true);
    const fromEnv = resolveConfig([], { TIERCACHE_TLS_CERT: certs.path("serverCert"), TIERCACHE_TLS_KEY: certs.path("serverKey") });
    expect(fromEnv.tlsKey?.equals(certs.serverKey)).toBe(true);

    expect(configError(() => resolveConfig(["--tls-cert", certs.path("serverCert")], {}))).toMatchObject({ option: "--tls-key" });
    expect(configError(() => resolveConfig(["--tls-ca", certs.path("ca")], {}))).toMatchObject({ option: "--tls-ca" });
    const mismatch = configError(() => resolveConfig(["--tls-cert", certs.path("serverCert"), "--tls-key", certs.path("clientKey")], {}));
    expect(mismatch.message).toMatch(/^unusable --tls-cert\/--tls-key\/--tls-ca: /);
    expect(mismatch.message).not.toContain("PRIVATE KEY");
    const missing = configError(() => resolveConfig(["--tls-cert", "/nonexistent/cert.pem"], {}));
    expect(missing.message).toBe('invalid --tls-cert: cannot read "/nonexistent/cert.pem" (ENOENT)');
    const notAKey = configError(() => resolveConfig(["--tls-cert", certs.path("serverCert"), "--tls-key", certs.path("serverCert")], {}));
    expect(notAKey.message).toMatch(/holds no PEM private key/);
    for (const err of [mismatch, missing, notAKey]) expect(err.message.split("\n")).toHaveLength(1);
  });
});

describe("refusals on a non-loopback address", () => {
  it("knows loopback addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(host), host).toBe(true);
    }
    for (const host of ["0.0.0.0", "::", "[::]", "10.0.0.1", "192.168.1.1", "example.com", "localhost.example.com", "128.0.0.1", "::ffff:10.0.0.1"]) {
      expect(isLoopback(host), host).toBe(false);
    }
  });

  it("refuses plaintext without --allow-insecure, and no tokens without --allow-unauthenticated", () => {
    const plain = configError(() => resolveConfig(["--host", "0.0.0.0"], {}));
    expect(plain.option).toBe("--allow-insecure");
    expect(plain.message).toBe(
      "refusing plaintext on non-loopback address 0.0.0.0: give --tls-cert and --tls-key (TIERCACHE_TLS_CERT, TIERCACHE_TLS_KEY), or --allow-insecure (TIERCACHE_ALLOW_INSECURE=true) to accept it",
    );
    // A switch takes no value: --allow-insecure does not swallow the next option.
    const open = configError(() => resolveConfig(["--allow-insecure", "--host", "0.0.0.0"], {}));
    expect(open.option).toBe("--allow-unauthenticated");
    expect(open.message).toMatch(/--tokens-file \(or TIERCACHE_TOKENS\), or --allow-unauthenticated/);

    expect(resolveConfig(["--host", "0.0.0.0", "--allow-insecure", "--allow-unauthenticated"], {})).toMatchObject({ allowInsecure: true, allowUnauthenticated: true });
    expect(resolveConfig(["--host", "0.0.0.0", "--allow-insecure=true"], { TIERCACHE_ALLOW_UNAUTHENTICATED: "true" }).allowUnauthenticated).toBe(true);
    expect(resolveConfig([], { TIERCACHE_HOST: "0.0.0.0", TIERCACHE_ALLOW_INSECURE: "true", TIERCACHE_TOKENS: TOKENS }).tokens).toHaveLength(1);
    expect(() => resolveConfig(["--host", "0.0.0.0", "--allow-insecure=false", "--allow-unauthenticated"], {})).toThrow(/refusing plaintext/);
    expect(configError(() => resolveConfig(["--allow-insecure=maybe"], {})).message).toBe('invalid --allow-insecure "maybe": expected true or false');
    // Loopback needs neither.
    expect(resolveConfig(["--host", "::1"], {}).tokens).toBeUndefined();
  });

  it("startServer refuses before opening or binding anything", async () => {
    const dir = tempDir();
    const dataDir = join(dir.path, "never-created");
    try {
      const config = defaultConfig({ host: "0.0.0.0", port: 0, dataDir });
      await expect(startServer(config, { logger: silentLogger })).rejects.toBeInstanceOf(ConfigError);
      await expect(startServer({ ...config, allowInsecure: true }, { logger: silentLogger })).rejects.toThrow(/--allow-unauthenticated/);
      expect(existsSync(dataDir)).toBe(false);
      // The allowed case passes the same check (not bound here, so as not to expose anything).
      expect(securityProblem({ ...config, allowInsecure: true, allowUnauthenticated: true })).toBeUndefined();
    } finally {
      dir.remove();
    }
  });

  it("the command exits 2 with one line naming the options", async () => {
    const bin = new URL("../../bin/tiercache.js", import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, "serve", "--host", "0.0.0.0", "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^tiercache: refusing plaintext on non-loopback address 0\.0\.0\.0: .*--allow-insecure/)]);
  });
});
