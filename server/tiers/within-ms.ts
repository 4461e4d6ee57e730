/** `promise`, or a rejection once `ms` passed without it settling (its own later rejection is then ignored). */
export async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
