/** Parses one raw configuration value: undefined when it cannot be used, or throws an Error whose message says why. */
export type Parser<T> = (raw: string) => T | undefined;

const UNITS: Record<string, number> = {
  "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};
const DURATIONS: Record<string, number> = { "": 1, ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

function withUnit(raw: string, units: Record<string, number>, min: number): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  if (!match) return undefined;
  const factor = units[match[2]!.toLowerCase()];
  if (factor === undefined) return undefined;
  const value = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(value) && value >= min ? value : undefined;
}

/** A whole number from min to max. */
export const integer =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^\s*\d+\s*$/.test(raw)) return undefined;
    const value = Number(raw);
    return value >= min && value <= max ? value : undefined;
  };
/** A number from min to max (fractions allowed). */
export const fraction =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
    const value = Number(raw);
    return value >= min && value <= max ? value : undefined;
  };
/** A size such as 1024, 64KiB, 16MiB, 1GB. */
export const bytes = (min: number): Parser<number> => (raw) => withUnit(raw, UNITS, min);
/** A duration such as 250ms, 30s, 5m, 1h, 7d; a bare number is ms. */
export const duration = (min: number): Parser<number> => (raw) => withUnit(raw, DURATIONS, min);
/** One of the given words. */
export const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) =>
    values.find((value) => value === raw.trim());
/** Any non-blank text. */
export const text: Parser<string> = (raw) => (raw.trim() === "" ? undefined : raw.trim());
/** "off", or what `parser` accepts. */
export const orOff =
  <T>(parser: Parser<T>): Parser<T | "off"> =>
  (raw) =>
    raw.trim() === "off" ? "off" : parser(raw);

/** A size the way `bytes` reads it back, in the largest binary unit that divides it: 268435456 -> "256MiB". */
export function formatBytes(n: number): string {
  for (const [unit, factor] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= factor && n % factor === 0) return `${n / factor}${unit}`;
  }
  return String(n);
}

/** A duration the way `duration` reads it back, in the largest unit that divides it: 10000 -> "10s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, factor] of [["d", 86400e3], ["h", 3600e3], ["m", 60e3], ["s", 1e3]] as const) {
    if (ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}
