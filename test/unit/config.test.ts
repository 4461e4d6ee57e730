import { describe, expect, it } from "vitest";
import { checkConsistency, ConfigError, resolveConfig } from "../../server/config.js";

describe("resolveConfig", () => {
  it("has working defaults", () => {
    const config = resolveConfig([], {});
    expect(config).toMatchObject({ host: "127.0.0.1", port: 50051, storage: "lmdb", defaultTtlMs: 0, memoryPolicy: "lru", maxKeyBytes: 1024 });
    expect(config.dataDir).toMatch(/tiercache-data$/);
  });

  it("reads TIERCACHE_* variables and lets flags override them", () => {
    const env = { TIERCACHE_PORT: "6000", TIERCACHE_DEFAULT_TTL: "5m", TIERCACHE_MEMORY_MAX_BYTES: "64MiB", TIERCACHE_HOST: "0.0.0.0", TIERCACHE_ALLOW_INSECURE: "true", TIERCACHE_ALLOW_UNAUTHENTICATED: "true" };
    const config = resolveConfig(["--port", "7000", "--default-ttl=250ms"], env);
    expect(config.port).toBe(7000);
    expect(config.defaultTtlMs).toBe(250);
    expect(config.memoryMaxBytes).toBe(64 * 1024 * 1024);
    expect(config.host).toBe("0.0.0.0");
  });

  it.each([
    [["--port", "99999"], "--port"],
    [["--port", "-1"], "--port"],
    [["--default-ttl", "soon"], "--default-ttl"],
    [["--memory-max-entries", "0"], "--memory-max-entries"],
    [["--memory-policy", "random"], "--memory-policy"],
    [["--storage", "s3"], "--storage"],
    [["--max-value-bytes", "64MiB"], "--max-message-bytes"],
    [["--nope", "1"], "--nope"],
    [["--port"], "--port"],
  ])("refuses %j naming %s", (argv, option) => {
    let error: unknown;
    try {
      resolveConfig(argv, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe(option);
    expect((error as ConfigError).message).toContain(option);
    expect((error as ConfigError).message).not.toContain("\n");
  });

  it("accepts the old --storage local as lmdb, and says it is deprecated", () => {
    for (const [argv, env, source] of [[["--storage", "local"], {}, "--storage"], [[], { TIERCACHE_STORAGE: "local" }, "TIERCACHE_STORAGE"]] as const) {
      const notices: string[] = [];
      expect(resolveConfig(argv, env, (message) => notices.push(message)).storage).toBe("lmdb");
      expect(notices).toEqual([`${source} "local" is deprecated: use "lmdb", which means the same`]);
    }
    const notices: string[] = [];
    expect(resolveConfig(["--storage", "lmdb"], {}, (message) => notices.push(message)).storage).toBe("lmdb");
    expect(notices).toEqual([]);
    expect(() => resolveConfig(["--storage", "toString"], {})).toThrow(ConfigError);
  });

  it("refuses a Redis option beside a --storage that would not use it, rather than run without Redis", () => {
    const cases = [
      [["--storage", "memory", "--redis-url", "redis://127.0.0.1:6379"], {}, /^invalid --storage memory: --redis-url is set, .*; use --storage redis \(or leave --storage out, when a Redis target makes Redis the default\), or drop --redis-url$/],
      [["--storage", "lmdb"], { TIERCACHE_REDIS_URL: "redis://127.0.0.1:6379" }, /^invalid --storage lmdb: --redis-url \(by TIERCACHE_REDIS_URL\) is set, .*, or unset TIERCACHE_REDIS_URL$/],
      [[], { TIERCACHE_STORAGE: "memory", TIERCACHE_REDIS_CLUSTER_NODES: "127.0.0.1:7000" }, /^invalid TIERCACHE_STORAGE memory: --redis-cluster-nodes \(by TIERCACHE_REDIS_CLUSTER_NODES\) is set, .*; set TIERCACHE_STORAGE=redis \(or unset it, when a Redis target makes Redis the default\), or unset TIERCACHE_REDIS_CLUSTER_NODES$/],
      [["--storage", "local", "--redis-sentinels", "127.0.0.1:26379"], {}, /^invalid --storage local: --redis-sentinels is set/],
      [["--storage", "lmdb", "--redis-url", "redis://127.0.0.1:6379"], { TIERCACHE_STORAGE: "memory" }, /^invalid --storage lmdb: .*; use --storage redis, or drop --redis-url$/],
      [["--storage", "memory", "--redis-url", "redis://127.0.0.1:6379", "--redis-timeout", "1s", "--degraded-writes"], {}, /, or drop --redis-url, drop --redis-timeout, drop --degraded-writes$/],
    ] as const;
    for (const [argv, env, message] of cases) {
      let error: unknown;
      try {
        resolveConfig(argv, env, () => {});
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe("--storage");
      expect((error as ConfigError).message).toMatch(message);
      expect((error as ConfigError).message).toContain("only --storage redis uses Redis");
    }
    expect(resolveConfig(["--storage", "redis", "--redis-url", "redis://127.0.0.1:6379"], {}).storage).toBe("redis");
    expect(resolveConfig(["--redis-url", "redis://127.0.0.1:6379"], {}).storage).toBe("redis");
    expect(resolveConfig(["--storage", "memory"], {}).storage).toBe("memory");
    const built = { ...resolveConfig(["--storage", "memory"], {}), redisUrl: "redis://127.0.0.1:6379" };
    expect(() => checkConsistency(built)).toThrow('invalid storage "memory" (in the program\'s configuration): redisUrl is set, and only storage "redis" uses Redis; set storage: "redis", or leave redisUrl out');
    expect(() => checkConsistency({ ...built, storage: "redis", redisUrl: undefined })).toThrow(/^invalid storage "redis" \(in the program's configuration\): it needs redisUrl, redisClusterNodes or redisSentinels$/);
    expect(() => checkConsistency({ ...built, storage: "redis", redisClusterNodes: ["127.0.0.1:7000"] })).toThrow("give only one of redisUrl, redisClusterNodes and redisSentinels");
  });

  it("refuses an option that nothing would read, rather than ignore it", () => {
    const refused = (argv: readonly string[], env: Record<string, string>) => {
      try {
        resolveConfig(argv, env, () => {});
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error(`accepted ${argv.join(" ")} ${JSON.stringify(env)}`);
    };
    const tuning = [
      ["--redis-timeout", "200ms"],
      ["--redis-retries", "0"],
      ["--redis-breaker-reset", "5s"],
      ["--redis-key-prefix", "app"],
      ["--redis-password", "secret"],
      ["--redis-sentinel-name", "main"],
    ] as const;
    for (const [flag, value] of tuning) {
      const byDefault = refused([flag, value], {});
      expect(byDefault.option).toBe(flag);
      const target = flag === "--redis-sentinel-name" ? "--redis-sentinels" : "--redis-url, --redis-cluster-nodes or --redis-sentinels";
      expect(byDefault.message).toBe(`invalid ${flag}: only the Redis tier reads it, and this server has none (storage lmdb, the default without --redis-url, --redis-cluster-nodes or --redis-sentinels); give ${target}, or drop ${flag}`);
      for (const storage of ["memory", "lmdb", "local"]) {
        expect(refused(["--storage", storage, `${flag}=${value}`], {}).message).toMatch(
          new RegExp(`^invalid ${flag}: only the Redis tier reads it, and this server has none \\(--storage ${storage}\\); use --storage redis \\(or leave --storage out, when a Redis target makes Redis the default\\) and give --redis-.*, or drop ${flag}$`),
        );
      }
    }
    expect(refused([], { TIERCACHE_STORAGE: "memory", TIERCACHE_REDIS_TIMEOUT: "1s" }).message).toBe(
      "invalid --redis-timeout (by TIERCACHE_REDIS_TIMEOUT): only the Redis tier reads it, and this server has none (TIERCACHE_STORAGE memory); set TIERCACHE_STORAGE=redis (or unset it, when a Redis target makes Redis the default) and give --redis-url, --redis-cluster-nodes or --redis-sentinels, or unset TIERCACHE_REDIS_TIMEOUT",
    );
    const several = refused(["--redis-timeout", "2s"], { TIERCACHE_REDIS_TIMEOUT: "1s", TIERCACHE_REDIS_KEY_PREFIX: "app" });
    expect(several.message).toMatch(/^invalid --redis-key-prefix \(by TIERCACHE_REDIS_KEY_PREFIX\), --redis-timeout \(and TIERCACHE_REDIS_TIMEOUT\): only the Redis tier reads them, .*, or unset TIERCACHE_REDIS_KEY_PREFIX, drop --redis-timeout and unset TIERCACHE_REDIS_TIMEOUT$/);
    expect(refused(["--storage", "memory", "--degraded-writes"], {}).message).toBe("invalid --degraded-writes: it keeps writes in memory while the durable tier is down, and --storage memory has none; drop --degraded-writes");
    expect(refused([], { TIERCACHE_STORAGE: "memory", TIERCACHE_DEGRADED_WRITES: "true" }).message).toBe("invalid --degraded-writes (by TIERCACHE_DEGRADED_WRITES): it keeps writes in memory while the durable tier is down, and TIERCACHE_STORAGE memory has none; unset TIERCACHE_DEGRADED_WRITES");
    expect(refused(["--storage", "memory", "--redis-retries", "1", "--degraded-writes"], {}).message).toMatch(/^invalid --redis-retries, --degraded-writes: only the Redis tier reads them, .*, or drop --redis-retries, drop --degraded-writes$/);
    expect(resolveConfig(["--storage", "memory", "--degraded-writes=false"], {}).degradedWrites).toBe(false);
    expect(resolveConfig(["--storage", "memory"], { TIERCACHE_DEGRADED_WRITES: "0" }).degradedWrites).toBe(false);
    expect(resolveConfig(["--storage", "lmdb", "--degraded-writes"], {}).degradedWrites).toBe(true);
    expect(refused(["--redis-timeout", "1s", "--redis-sentinel-name", "m"], {}).message).toMatch(/; give --redis-sentinels, or drop --redis-sentinel-name, drop --redis-timeout$/);
    expect(refused(["--storage", "memory", "--redis-timeout", "1s"], { TIERCACHE_STORAGE: "lmdb" }).message).toMatch(/\(--storage memory\); use --storage redis and give/);

    expect(refused(["--redis-cluster-nodes", "127.0.0.1:7000", "--redis-sentinel-name", "main"], {}).message).toMatch(/^invalid --redis-sentinel-name: .* by --redis-cluster-nodes, not --redis-sentinels; drop --redis-sentinel-name$/);
    expect(refused(["--redis-url", "redis://127.0.0.1:6379"], { TIERCACHE_REDIS_SENTINEL_NAME: "main" }).message).toMatch(/by --redis-url, not --redis-sentinels; unset TIERCACHE_REDIS_SENTINEL_NAME$/);
    expect(refused(["--storage", "redis", "--redis-sentinel-name", "main"], {}).message).toBe("invalid --storage redis: it needs --redis-url, --redis-cluster-nodes or --redis-sentinels");
    expect(refused(["--redis-url", "redis://default@127.0.0.1:6379?password=one"], {}).message).toMatch(/a user and \?password=, which would be ignored beside it/);
    expect(refused(["--redis-url", "redis://default@127.0.0.1:6379?password=one"], {}).message).not.toContain("one@");
    for (const url of ["redis://:one@127.0.0.1:6379", "redis://default:one@127.0.0.1:6379", "redis://127.0.0.1:6379?password=one"]) {
      expect(refused(["--redis-url", url], { TIERCACHE_REDIS_PASSWORD: "two" }).message).toMatch(/^invalid --redis-password \(by TIERCACHE_REDIS_PASSWORD\): --redis-url carries a password already; .*: unset TIERCACHE_REDIS_PASSWORD, or take it out of the URL$/);
    }
    expect(refused(["--redis-url", "redis://127.0.0.1:6379", "--redis-cluster-nodes", "127.0.0.1:7000"], {}).message).toMatch(/give only one of/);
    for (const flag of ["--redis-password=", "--redis-url="]) {
      const stray = refused([flag, "redis://:hunter2@h:1"], {});
      expect(stray.message).toBe(`unexpected argument after ${flag} (its value is not repeated here): write ${flag}VALUE with no space, or ${flag.slice(0, -1)} VALUE`);
    }

    const withUrl = resolveConfig(["--redis-url", "redis://default@127.0.0.1:6379", "--redis-timeout", "200ms", "--redis-key-prefix", "app", "--redis-password", "secret"], {});
    expect([withUrl.redisTimeoutMs, withUrl.redisKeyPrefix, withUrl.redisPassword]).toEqual([200, "app", "secret"]);
    expect(resolveConfig(["--redis-sentinels", "127.0.0.1:26379", "--redis-sentinel-name", "main", "--redis-password", "pw"], {}).redisSentinelName).toBe("main");
    expect(resolveConfig(["--storage", "memory"], { TIERCACHE_REDIS_TIMEOUT: "" }).redisTimeoutMs).toBe(500);

    const program = resolveConfig(["--storage", "memory"], {});
    expect(() => checkConsistency(program)).not.toThrow();
    expect(() => checkConsistency({ ...program, redisPassword: "" })).not.toThrow();
    expect(() => checkConsistency({ ...program, redisRetries: 0, redisKeyPrefix: "app" })).toThrow(
      'invalid redisKeyPrefix, redisRetries: only the Redis tier reads them, and this server has none (storage "memory" (in the program\'s configuration)); set storage: "redis" and give one of redisUrl, redisClusterNodes, redisSentinels, or leave redisKeyPrefix out, leave redisRetries out',
    );
    expect(() => checkConsistency({ ...program, degradedWrites: true })).toThrow('invalid degradedWrites: it keeps writes in memory while the durable tier is down, and storage "memory" (in the program\'s configuration) has none; leave degradedWrites out');
    const redisProgram = resolveConfig(["--redis-url", "redis://:pw@127.0.0.1:6379"], {});
    expect(() => checkConsistency({ ...redisProgram, redisPassword: "pw" })).toThrow(/^invalid redisPassword: redisUrl carries a password already/);
    expect(() => checkConsistency({ ...redisProgram, redisSentinelName: "main" })).toThrow(/^invalid redisSentinelName: .* by redisUrl, not redisSentinels; leave redisSentinelName out$/);
  });

  it("refuses a duration longer than a Node timer holds (it would fire after 1 ms), for every option that becomes a timer", () => {
    const redis = ["--redis-url", "redis://127.0.0.1:6379"];
    for (const flag of ["--redis-timeout", "--redis-breaker-reset", "--shutdown-grace"]) {
      expect(() => resolveConfig([...redis, flag, "25d"], {}), flag).toThrow(new RegExp(`invalid ${flag} "25d".*up to 24d|invalid ${flag} "25d".*to 24d`));
      expect(resolveConfig([...redis, flag, "24d"], {}), flag).toBeDefined();
    }
  });

  it("names the environment variable when the bad value came from it", () => {
    expect(() => resolveConfig([], { TIERCACHE_PORT: "http" })).toThrow(/invalid TIERCACHE_PORT "http"/);
  });
});

describe("--namespaces", () => {
  it("parses per-namespace settings from JSON or a file", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "tc-")), "ns.json");
    writeFileSync(file, JSON.stringify({ sessions: { defaultTtl: "30m", policy: "lfu", maxBytes: "8MiB", ttlJitter: 0.1, maxEntries: 50 } }));
    for (const raw of [`@${file}`, JSON.stringify({ sessions: { defaultTtl: "30m", policy: "lfu", maxBytes: "8MiB", ttlJitter: 0.1, maxEntries: 50 } })]) {
      const { namespaces } = resolveConfig(["--namespaces", raw], {});
      expect(namespaces.get("sessions")).toEqual({ defaultTtlMs: 1_800_000, policy: "lfu", memoryMaxBytes: 8 * 1024 * 1024, ttlJitter: 0.1, memoryMaxEntries: 50 });
    }
  });

  it.each([
    ["{not json", /not valid JSON/],
    ['{"a":{"colour":"red"}}', /namespace "a": unknown field "colour"/],
    ['{"bad name":{}}', /invalid namespace "bad name"/],
    ['{"a":{"policy":"random"}}', /namespace "a": policy "random" is not lru, fifo, lfu or tinylfu/],
    ['{"a":{"ttlJitter":2}}', /ttlJitter 2 is not a number from 0 to 1/],
    ["[]", /expected a JSON object/],
  ])("refuses %s with a message naming the problem", (raw, message) => {
    expect(() => resolveConfig(["--namespaces", raw], {})).toThrow(ConfigError);
    expect(() => resolveConfig(["--namespaces", raw], {})).toThrow(message);
    expect(() => resolveConfig([], { TIERCACHE_NAMESPACES: raw })).toThrow(/invalid TIERCACHE_NAMESPACES: /);
  });
});
