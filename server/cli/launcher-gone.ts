/** How often the parent process id is checked. */
const POLL_MS = 200;

/** A wait for the launching npm to go away; `cancel` stops watching. */
export interface LauncherWatch {
  readonly gone: Promise<void>;
  cancel(): void;
}

/**
 * Resolves when this process was started by npm (`npx tiercache serve`,
 * `npm start`) and has since lost its parent.
 *
 * npm runs the command under `sh -c`, and on SIGTERM forwards the signal to
 * that shell only: dash dies without passing it on, npm exits, and the server
 * would go on running, reparented, holding its port. Losing the parent is how
 * the server learns of it. Outside npm nothing is watched, so a server started
 * with `nohup … &` outlives its shell as intended.
 */
export function watchLauncher(env: Readonly<Record<string, string | undefined>>, pollMs = POLL_MS): LauncherWatch {
  if (env["npm_command"] === undefined) return { gone: new Promise<void>(() => {}), cancel: () => {} };
  const parent = process.ppid;
  let timer: NodeJS.Timeout | undefined;
  const gone = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(timer);
      resolve();
    }, pollMs);
    timer.unref();
  });
  return { gone, cancel: () => clearInterval(timer) };
}
