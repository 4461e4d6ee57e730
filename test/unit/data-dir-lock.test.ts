import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataDirLock, DataDirLockedError, LOCK_FILE_NAME, type LockHolder } from "../../server/tiers/data-dir-lock.js";
import { tempDir } from "../helpers/test-server.js";

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  return child.pid!;
}

function holder(overrides: Partial<LockHolder>): LockHolder {
  return { pid: process.pid, host: hostname(), since: "2020-01-01T00:00:00.000Z", token: "0123456789abcdef", ...overrides };
}

function refusal(dir: string): DataDirLockedError {
  try {
    DataDirLock.acquire(dir).release();
  } catch (err) {
    if (err instanceof DataDirLockedError) return err;
    throw err;
  }
  throw new Error("the lock was taken");
}

describe("DataDirLock", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).reverse().forEach((step) => step()));

  function dataDir(): string {
    const dir = tempDir("tiercache-lock-");
    cleanup.push(dir.remove);
    return dir.path;
  }
  const lockFile = (dir: string) => join(dir, LOCK_FILE_NAME);
  const recorded = (dir: string) => JSON.parse(readFileSync(lockFile(dir), "utf8")) as LockHolder;

  it("records this process while held and leaves no file once released", () => {
    const dir = dataDir();
    const lock = DataDirLock.acquire(dir);
    expect(recorded(dir)).toMatchObject({ pid: process.pid, host: hostname() });
    expect(readdirSync(dir)).toEqual([LOCK_FILE_NAME]);
    lock.release();
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses a second lock in the same process", () => {
    const dir = dataDir();
    const lock = DataDirLock.acquire(dir);
    cleanup.push(() => lock.release());
    const error = refusal(dir);
    expect(error.holder?.pid).toBe(process.pid);
    expect(error.message).toContain(`pid ${process.pid} on host ${hostname()} (this process)`);
    expect(error.message).toContain(dir);
  });

  it("refuses a lock recorded by another host, whose process it cannot check", () => {
    const dir = dataDir();
    writeFileSync(lockFile(dir), JSON.stringify(holder({ pid: deadPid(), host: "elsewhere.example" })));
    const error = refusal(dir);
    expect(error.message).toMatch(/locked by pid \d+ on host elsewhere\.example since 2020-01-01T00:00:00\.000Z/);
    expect(error.message).toContain(lockFile(dir));
    expect(recorded(dir).host).toBe("elsewhere.example");
  });

  it("takes over a lock whose process no longer runs on this host", () => {
    const dir = dataDir();
    writeFileSync(lockFile(dir), JSON.stringify(holder({ pid: deadPid() })));
    const lock = DataDirLock.acquire(dir);
    expect(recorded(dir)).toMatchObject({ pid: process.pid, token: lock.holder.token });
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes over a lock of an earlier process that had this process's pid (a restarted container)", () => {
    const dir = dataDir();
    writeFileSync(lockFile(dir), JSON.stringify(holder({ pid: process.pid, token: "from-an-earlier-run" })));
    const lock = DataDirLock.acquire(dir);
    expect(recorded(dir).token).toBe(lock.holder.token);
    lock.release();
  });

  it("refuses an unreadable lock file and says it may be deleted", () => {
    const dir = dataDir();
    writeFileSync(lockFile(dir), "");
    const error = refusal(dir);
    expect(error.holder).toBeUndefined();
    expect(error.message).toContain(`delete it if no tiercache server uses the directory`);
    expect(readFileSync(lockFile(dir), "utf8")).toBe("");
  });

  it("on release, leaves alone a lock file that is no longer its own", () => {
    const dir = dataDir();
    const lock = DataDirLock.acquire(dir);
    const other = holder({ pid: deadPid(), token: "someone-else" });
    writeFileSync(lockFile(dir), JSON.stringify(other));
    lock.release();
    expect(recorded(dir)).toEqual(other);
  });
});
