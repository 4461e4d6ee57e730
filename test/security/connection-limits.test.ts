import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { resolveConfig } from "../../server/config.js";
import { generateCerts, type TestCerts } from "../helpers/certs.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const GOAWAY = 7;

/** A raw TCP client: whether the server spoke to it or closed it unheard, and the HTTP/2 frame types it got. */
interface RawConnection {
  socket: Socket;
  /** "accepted": the server sent something (its HTTP/2 SETTINGS, or TLS); "closed": closed before a single byte. */
  outcome: Promise<"accepted" | "closed">;
  /** Resolves when the server has closed its side. */
  ended: Promise<unknown>;
  frameTypes(): number[];
}

/**
 * Connects to `port`. `speak` sends the HTTP/2 preface and then nothing more;
 * the socket never closes its own side (a peer that ignores GOAWAY).
 */
function connectRaw(port: number, speak: boolean): RawConnection {
  const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  socket.on("error", () => {});
  let received = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  if (speak) socket.once("connect", () => socket.write(Buffer.concat([PREFACE, EMPTY_SETTINGS])));
  const ended = Promise.race([once(socket, "end"), once(socket, "close")]);
  const outcome = Promise.race([once(socket, "data").then(() => "accepted" as const), ended.then(() => (received.length > 0 ? ("accepted" as const) : ("closed" as const)))]);
  return {
    socket,
    outcome,
    ended,
    frameTypes: () => {
      const types: number[] = [];
      for (let at = 0; at + 9 <= received.length; at += 9 + received.readUIntBE(at, 3)) types.push(received[at + 3]!);
      return types;
    },
  };
}

/** Reads until the local tier serves `key` (the Watch stream is READY and the value cached). */
async function warm(client: CacheClient, key: string): Promise<void> {
  await eventually(async () => {
    await client.get(key);
    return (await client.getEntry(key))?.tier === "client";
  }, 5_000, `the local tier serves ${key}`);
}

describe("connection options", () => {
  it("resolve with documented defaults, from flags and TIERCACHE_* variables", () => {
    expect(resolveConfig([], {})).toMatchObject({
      maxConnections: 1000,
      handshakeTimeoutMs: 10_000,
      connectionIdleTimeoutMs: 300_000,
      maxConnectionAgeMs: 3_600_000,
      maxConnectionAgeGraceMs: 60_000,
    });
    const config = resolveConfig(["--max-connections", "10", "--connection-idle-timeout", "off", "--max-connection-age", "30m"], {
      TIERCACHE_HANDSHAKE_TIMEOUT: "2s",
      TIERCACHE_MAX_CONNECTION_AGE_GRACE: "off",
    });
    expect(config).toMatchObject({ maxConnections: 10, connectionIdleTimeoutMs: "off", maxConnectionAgeMs: 1_800_000, handshakeTimeoutMs: 2000, maxConnectionAgeGraceMs: "off" });
    expect(() => resolveConfig(["--max-connections", "0"], {})).toThrow(/--max-connections/);
    expect(() => resolveConfig(["--connection-idle-timeout", "30d"], {})).toThrow(/--connection-idle-timeout/);
    expect(() => resolveConfig(["--handshake-timeout", "off"], {})).toThrow(/--handshake-timeout/);
  });
});

describe("connections", () => {
  let t: TestServer | undefined;
  const raws: RawConnection[] = [];
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.socket.destroy();
    await t?.dispose();
    t = undefined;
  });

  it("past --max-connections, new connections are closed unheard; the clients already connected keep working", async () => {
    t = await startTestServer({ storage: "memory", maxConnections: 4 });
    await t.client.set("k", 1);
    expect(t.server.connections().open).toBe(1);
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const raw = connectRaw(t.server.port, true);
      raws.push(raw);
      outcomes.push(await raw.outcome);
    }
    expect(outcomes).toEqual(["accepted", "accepted", "accepted", "closed", "closed", "closed"]);
    expect(t.server.connections()).toMatchObject({ open: 4, refused: 3 });
    expect(await t.client.get("k")).toBe(1);

    raws[0]!.socket.destroy();
    await eventually(() => t!.server.connections().open === 3, 5_000, "the server sees the close");
    const again = connectRaw(t.server.port, true);
    raws.push(again);
    expect(await again.outcome).toBe("accepted");
  });

  it("closes a connection that never starts a handshake, and an idle one, even when its peer ignores GOAWAY", async () => {
    t = await startTestServer({ storage: "memory", handshakeTimeoutMs: 200, connectionIdleTimeoutMs: 300, maxDeadlineMs: 300 });
    const silent = connectRaw(t.server.port, false);
    const deaf = connectRaw(t.server.port, true); // ignores GOAWAY and never closes its side
    raws.push(silent, deaf);
    await eventually(() => t!.server.connections().accepted === 2, 5_000, "both connections accepted");
    await eventually(() => t!.server.connections().open === 0, 10_000, "the server closes both");
    await silent.ended;
    expect(deaf.frameTypes()).toContain(GOAWAY); // it was asked to go first, at the idle timeout
    expect(silent.frameTypes()).not.toContain(GOAWAY); // never an HTTP/2 session: the handshake timeout closed it

    // A real client's idle connection is closed too; its next call simply reconnects.
    await t.client.set("k", 2);
    await eventually(() => t!.server.connections().open === 0, 5_000, "the idle client connection is closed");
    expect(await t.client.get("k")).toBe(2);
  });

  it("does not close a connection whose only call is a quiet Watch stream", async () => {
    t = await startTestServer({ storage: "memory", connectionIdleTimeoutMs: 300, maxDeadlineMs: 300 });
    const reader = t.newClient({ localTier: true });
    await t.client.set("k", 3);
    await warm(reader, "k");
    const accepted = t.server.connections().accepted;
    await sleep(4500); // 15 idle timeouts, and past two checks of the 2 s silence period (2 heartbeats): the Watch keeps the connection
    expect(reader.getLocal("k")).toBe(3);
    expect(t.server.connections().accepted).toBe(accepted); // nobody had to reconnect
  });

  it("a local-tier client keeps serving, and stays coherent, across connections aged out by --max-connection-age", async () => {
    t = await startTestServer({ storage: "memory", maxConnectionAgeMs: 400, maxConnectionAgeGraceMs: 200 });
    const reader = t.newClient({ localTier: true, coherence: { reconnectBaseMs: 20, reconnectMaxMs: 100 } });
    await t.client.set("k", "v1");
    await warm(reader, "k");
    const accepted = t.server.connections().accepted;
    // Each connection gets GOAWAY at about 400 ms and is cut 200 ms later, its Watch stream with it.
    await eventually(() => t!.server.connections().accepted >= accepted + 3, 10_000, "three connections aged out and replaced");
    await warm(reader, "k");
    await t.client.set("k", "v2");
    await eventually(() => reader.getLocal("k") !== "v1", 3_000, "the write reaches the reader's local tier");
    expect(await reader.get("k")).toBe("v2");
  });
});

describe("connections over TLS", () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = generateCerts();
  });
  afterAll(() => certs.remove());

  it("a connection that never starts its TLS handshake is closed by --handshake-timeout", async () => {
    const t = await startTestServer({ storage: "memory", tlsCert: certs.serverCert, tlsKey: certs.serverKey, handshakeTimeoutMs: 200 });
    try {
      const silent = connectRaw(t.server.port, false);
      await silent.ended;
      expect(await silent.outcome).toBe("closed");
      silent.socket.destroy();
      await eventually(() => t.server.connections().open === 0, 5_000, "the server forgets it");
      const client = t.newClient({ tls: { ca: certs.path("ca") } });
      await client.set("k", 1);
      expect(await client.get("k")).toBe(1);
    } finally {
      await t.dispose();
    }
  });
});
