import { timingSafeEqual } from "node:crypto";
import type { DescMethod, Message } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type { Authorizer, CallContext } from "../../core/grpc-adapter.js";
import { METHOD_POLICIES, type CacheMethod } from "../../core/method-policy.js";
import { RpcError } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { DEFAULT_NAMESPACE } from "../engine/validation.js";
import type { Tenant } from "../engine/durable-tier.js";
import type { Logger } from "../logger.js";
import { tokenDigest, type AccessGrant, type Right } from "./tokens.js";

/** Stands for "every namespace" in a {@link MethodRule}'s answer and in a grant. */
export const ALL_NAMESPACES = "*";

/** What an RPC needs: a right, on the namespaces its request names. */
export interface MethodRule {
  readonly right: Right;
  /**
   * The namespaces a request acts on ("" = the default namespace). An empty
   * list, or `"*"`, means every namespace: only a grant on `*` covers it.
   */
  namespaces(request: Message): readonly string[];
  /**
   * The method's messages carry calls of other methods, which its handler
   * authorizes one by one (as those methods, answering each refusal on its
   * own): the stream itself is checked for its caller and right only.
   */
  readonly checkedPerCall?: boolean;
}

/** The request's `namespace` field; a message without one counts as every namespace (fail closed). */
function namespaceField(request: Message): readonly string[] {
  const namespace = (request as { namespace?: unknown }).namespace;
  return typeof namespace === "string" ? [namespace] : [ALL_NAMESPACES];
}

/** Methods whose request does not name one namespace in a `namespace` field. */
const NAMESPACES_OF: Partial<Record<CacheMethod, (request: Message) => readonly string[]>> = {
  /** An empty namespace asks for every namespace's counters. */
  stats: (request) => namespaceField(request).map((ns) => (ns === "" ? ALL_NAMESPACES : ns)),
  /** One namespace per cursor; no cursor at all counts as every namespace. */
  watch: (request) => {
    const cursors = (request as { cursors?: unknown }).cursors;
    return Array.isArray(cursors) ? cursors.map((c) => String((c as { namespace?: unknown }).namespace ?? ALL_NAMESPACES)) : [ALL_NAMESPACES];
  },
};

/**
 * tiercache.v1.CacheService methods by descriptor name (`method.name`),
 * derived from core/method-policy.ts (the right each method needs). A method
 * missing here is refused for every token (fail closed).
 */
export const CACHE_SERVICE_RULES: Readonly<Record<string, MethodRule>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(METHOD_POLICIES) as CacheMethod[]).map((method) => [
      CacheService.method[method].name,
      { right: METHOD_POLICIES[method].right, namespaces: NAMESPACES_OF[method] ?? namespaceField, ...(method === "leaseSession" && { checkedPerCall: true }) },
    ]),
  ),
);

/** Options of {@link AccessControl}. */
export interface AccessControlOptions {
  /** Rules by method name. @default CACHE_SERVICE_RULES */
  rules?: Readonly<Record<string, MethodRule>>;
  /** Refused calls are logged at debug level (method, peer, grant number; never a token). */
  logger?: Logger;
}

const BEARER = /^bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i;

function covers(pattern: string, namespace: string): boolean {
  if (pattern === ALL_NAMESPACES) return true;
  if (namespace === ALL_NAMESPACES) return false;
  if (pattern.endsWith("*")) return namespace.startsWith(pattern.slice(0, -1));
  return namespace === pattern;
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * Bearer-token access control for every RPC: plug {@link authorize} into
 * `addService`'s `authorize` option.
 *
 * A missing, malformed or unknown token is UNAUTHENTICATED; a known token
 * without the method's right, or without a grant on a namespace the request
 * names, is PERMISSION_DENIED. A token is looked up by comparing its SHA-256
 * with every grant's in constant time, so timing does not tell which grant
 * (or which prefix of a token) came close.
 */
export class AccessControl {
  readonly #grants: readonly AccessGrant[];
  readonly #rules: Readonly<Record<string, MethodRule>>;
  readonly #logger: Logger | undefined;
  /** The grant each call authenticated with, so a stream's messages reuse it. */
  readonly #principals = new WeakMap<CallContext, AccessGrant>();
  readonly #tenants = new Map<number, Tenant>();

  constructor(grants: readonly AccessGrant[], options: AccessControlOptions = {}) {
    if (grants.length === 0) throw new RangeError("AccessControl needs at least one grant");
    this.#grants = grants;
    this.#rules = options.rules ?? CACHE_SERVICE_RULES;
    this.#logger = options.logger;
  }

  /** The adapter hook: throws RpcError UNAUTHENTICATED or PERMISSION_DENIED. */
  readonly authorize: Authorizer = (method, request, context) => {
    const grant = this.#authenticate(method, context);
    const rule = Object.hasOwn(this.#rules, method.name) ? this.#rules[method.name] : undefined;
    if (rule === undefined) throw this.#deny(method, context, grant, `${method.name} is not open to access tokens`);
    if (!grant.rights.has(rule.right)) throw this.#deny(method, context, grant, `this token lacks the ${rule.right} right needed by ${method.name}`);
    if (request === undefined || rule.checkedPerCall === true) return;
    const named = rule.namespaces(request);
    for (const raw of named.length === 0 ? [ALL_NAMESPACES] : named) {
      const namespace = raw === "" ? DEFAULT_NAMESPACE : raw;
      if (!grant.namespaces.some((pattern) => covers(pattern, namespace))) {
        const what = namespace === ALL_NAMESPACES ? "every namespace" : `namespace ${quoted(namespace)}`;
        throw this.#deny(method, context, grant, `this token may not ${rule.right} ${what}`);
      }
    }
  };

  /** The quota of the token a call came with (after {@link authorize}), or undefined when it has none. */
  readonly tenantOf = (context: CallContext): Tenant | undefined => {
    const grant = this.#principals.get(context.stream ?? context);
    if (grant?.quota === undefined) return undefined;
    let tenant = this.#tenants.get(grant.index);
    if (!tenant) this.#tenants.set(grant.index, (tenant = { id: `token #${grant.index}`, ...grant.quota }));
    return tenant;
  };

  #authenticate(method: DescMethod, call: CallContext): AccessGrant {
    const context = call.stream ?? call;
    const known = this.#principals.get(context);
    if (known) return known;
    const values = context.metadata.get("authorization");
    if (values.length === 0) throw this.#unauthenticated(method, context, "missing credentials: send the header `authorization: Bearer <token>`");
    const match = values.length === 1 && typeof values[0] === "string" ? BEARER.exec(values[0]) : null;
    if (!match) throw this.#unauthenticated(method, context, "malformed credentials: send one header `authorization: Bearer <token>`");
    const digest = tokenDigest(match[1]!);
    let found: AccessGrant | undefined;
    for (const grant of this.#grants) {
      // Compare with every grant, whatever matched before: the time taken does not depend on which one matches.
      const equal = timingSafeEqual(digest, grant.digest);
      found = equal ? grant : found;
    }
    if (!found) throw this.#unauthenticated(method, context, "invalid bearer token");
    this.#principals.set(context, found);
    return found;
  }

  #unauthenticated(method: DescMethod, context: CallContext, reason: string): RpcError {
    this.#logger?.debug("call refused", { method: method.name, peer: context.peer, code: "UNAUTHENTICATED", reason });
    return new RpcError(status.UNAUTHENTICATED, reason);
  }

  #deny(method: DescMethod, context: CallContext, grant: AccessGrant, reason: string): RpcError {
    this.#logger?.debug("call refused", { method: method.name, peer: context.peer, code: "PERMISSION_DENIED", grant: grant.index, reason });
    return new RpcError(status.PERMISSION_DENIED, reason);
  }
}
