import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Name of the lock file inside a data directory. */
export const LOCK_FILE_NAME = "tiercache.lock";

/** Who holds a data directory: what the lock file records. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** ISO time at which the lock was taken. */
  readonly since: string;
  /** Random; tells one holder's lock file from a later one with the same pid. */
  readonly token: string;
}

/** The data directory is locked by another process (or another open store in this one). */
export class DataDirLockedError extends Error {
  override readonly name = "DataDirLockedError";
  constructor(
    readonly dataDir: string,
    readonly lockFile: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder
        ? `data directory ${dataDir} is locked by pid ${holder.pid} on host ${holder.host}${holder.pid === process.pid && holder.host === hostname() ? " (this process)" : ""} since ${holder.since}: ` +
            `run one tiercache server per data directory (stop that one, or delete ${lockFile} if that process no longer runs)`
        : `data directory ${dataDir} is locked by ${lockFile}, which cannot be read: delete it if no tiercache server uses the directory`,
    );
  }
}

/** Real paths of the data directories this process holds (a second open in one process is refused too). */
const heldHere = new Set<string>();

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** The holder recorded in `file`; undefined when there is no such file; "unreadable" when it cannot be parsed. */
function readHolder(file: string): LockHolder | "unreadable" | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (errorCode(err) === "ENOENT") return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    const { pid, host, since, token } = parsed;
    if (Number.isSafeInteger(pid) && pid! > 0 && typeof host === "string" && typeof since === "string" && typeof token === "string") {
      return { pid: pid!, host, since, token };
    }
  } catch {
    // fall through
  }
  return "unreadable";
}

/** Whether the holder may still run. Only this host's processes can be checked; a pid of this process not held here is a previous run's. */
function mayBeAlive(holder: LockHolder, realDir: string): boolean {
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return heldHere.has(realDir);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) !== "ESRCH";
  }
}

/** Creates `lockFile` holding `holder`, atomically and only if absent: written aside, then hard-linked into place. */
function createExclusive(lockFile: string, holder: LockHolder): boolean {
  const aside = `${lockFile}.${holder.pid}.${holder.token}`;
  writeFileSync(aside, `${JSON.stringify(holder)}\n`, { flag: "wx" });
  try {
    linkSync(aside, lockFile);
    return true;
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    throw err;
  } finally {
    unlinkSync(aside);
  }
}

/**
 * Removes the stale lock file of `stale`, and only that one: it is renamed
 * aside first, and put back if another process replaced it in between.
 */
function removeStale(lockFile: string, stale: LockHolder): void {
  const aside = `${lockFile}.stale.${process.pid}.${randomBytes(8).toString("hex")}`;
  try {
    renameSync(lockFile, aside);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return;
    throw err;
  }
  const moved = readHolder(aside);
  if (typeof moved !== "object" || moved.token !== stale.token) {
    try {
      linkSync(aside, lockFile);
    } catch {
      // a newer lock file is in place already
    }
  }
  unlinkSync(aside);
}

/**
 * An exclusive lock on a data directory, held through a lock file that
 * records the holder's pid and host. A lock left by a process of this host
 * that no longer runs (killed, crashed) is taken over; one recorded by
 * another host is never taken over, since its process cannot be checked.
 */
export class DataDirLock {
  readonly #realDir: string;
  #released = false;

  private constructor(
    readonly lockFile: string,
    readonly holder: LockHolder,
    realDir: string,
  ) {
    this.#realDir = realDir;
  }

  /** Takes the lock of `dataDir` (an existing directory), or throws {@link DataDirLockedError} naming the holder. */
  static acquire(dataDir: string): DataDirLock {
    const realDir = realpathSync(dataDir);
    const lockFile = join(dataDir, LOCK_FILE_NAME);
    for (let attempt = 0; attempt < 5; attempt++) {
      const mine: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString("hex") };
      if (!heldHere.has(realDir) && createExclusive(lockFile, mine)) {
        heldHere.add(realDir);
        return new DataDirLock(lockFile, mine, realDir);
      }
      const holder = readHolder(lockFile);
      if (holder === undefined) continue;
      if (holder === "unreadable") throw new DataDirLockedError(dataDir, lockFile, undefined);
      if (mayBeAlive(holder, realDir)) throw new DataDirLockedError(dataDir, lockFile, holder);
      removeStale(lockFile, holder);
    }
    throw new Error(`cannot lock data directory ${dataDir}: its lock file ${lockFile} keeps changing`);
  }

  /** Releases the lock: deletes the lock file if it is still this lock's. Safe to call more than once. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    heldHere.delete(this.#realDir);
    const current = readHolder(this.lockFile);
    if (typeof current === "object" && current.token === this.holder.token) unlinkSync(this.lockFile);
  }
}
