import { readFileSync } from "node:fs";
import type { EvictionPolicyName } from "../core/memory-tier.js";
import { bytes, duration, fraction, integer, oneOf, type Parser } from "./config-values.js";
import type { NamespaceSettings } from "./engine/cache-engine.js";
import { checkNamespace } from "./engine/validation.js";

/** Settings given for particular namespaces; the rest come from the server-wide options. */
export type NamespaceOverrides = ReadonlyMap<string, Partial<NamespaceSettings>>;

const FIELDS: { [K in keyof NamespaceSettings]: { name: string; parse: Parser<NamespaceSettings[K]>; expected: string } } = {
  defaultTtlMs: { name: "defaultTtl", parse: duration(0), expected: "a duration such as 30s or 5m" },
  ttlJitter: { name: "ttlJitter", parse: fraction(0, 1), expected: "a number from 0 to 1" },
  memoryMaxEntries: { name: "maxEntries", parse: integer(1, 1e9), expected: "an integer from 1 to 1000000000" },
  memoryMaxBytes: { name: "maxBytes", parse: bytes(1024), expected: "a size of at least 1 KiB such as 64MiB" },
  policy: { name: "policy", parse: oneOf<EvictionPolicyName>("lru", "fifo", "lfu", "tinylfu"), expected: "lru, fifo, lfu or tinylfu" },
};

/**
 * Parses per-namespace settings: JSON text, or `@path` to a JSON file, shaped
 * `{ "<namespace>": { "defaultTtl": "5m", "ttlJitter": 0.1, "maxEntries": 1000,
 * "maxBytes": "64MiB", "policy": "lfu" } }`. Throws an Error naming the
 * namespace and field that cannot be used.
 */
export function parseNamespaceSettings(raw: string): NamespaceOverrides {
  const source = raw.trim().startsWith("@") ? readFileSync(raw.trim().slice(1), "utf8") : raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (err) {
    throw new Error(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object such as {"sessions":{"defaultTtl":"30m"}}');
  const result = new Map<string, Partial<NamespaceSettings>>();
  for (const [namespace, settings] of Object.entries(parsed)) {
    try {
      checkNamespace(namespace);
    } catch (err) {
      throw new Error((err as Error).message);
    }
    if (typeof settings !== "object" || settings === null || Array.isArray(settings)) throw new Error(`namespace ${JSON.stringify(namespace)}: expected an object`);
    const out: Partial<Record<keyof NamespaceSettings, unknown>> = {};
    for (const [field, value] of Object.entries(settings as Record<string, unknown>)) {
      const entry = Object.entries(FIELDS).find(([, spec]) => spec.name === field);
      if (!entry) throw new Error(`namespace ${JSON.stringify(namespace)}: unknown field ${JSON.stringify(field)} (known: ${Object.values(FIELDS).map((f) => f.name).join(", ")})`);
      const [key, spec] = entry as [keyof NamespaceSettings, (typeof FIELDS)[keyof NamespaceSettings]];
      const parsedValue = typeof value === "string" || typeof value === "number" ? spec.parse(String(value)) : undefined;
      if (parsedValue === undefined) throw new Error(`namespace ${JSON.stringify(namespace)}: ${field} ${JSON.stringify(value)} is not ${spec.expected}`);
      out[key] = parsedValue;
    }
    result.set(namespace, out as Partial<NamespaceSettings>);
  }
  return result;
}
