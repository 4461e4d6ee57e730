import { Cluster } from "ioredis";
import type { AttemptEnd } from "./attempt-end.js";
import type { RedisClient } from "./redis-connection.js";

/**
 * Keeps ioredis from writing a command after the attempt that issued it ended.
 *
 * ioredis keeps a Command alive and may write it again long after the guard
 * stopped waiting for it: Cluster resends on TRYAGAIN (every 100 ms, up to 16
 * times), MOVED, ASK, CLUSTERDOWN and a closed connection, re-executes a
 * whole pipeline on a common redirection, holds commands in a cluster node's
 * offline queue and in an auto-pipeline behind a busy one, waits for the
 * first slot table, and Script.js resends a script on NOSCRIPT. A write the
 * caller was told failed could so land over a write acknowledged since.
 *
 * Every command is tagged, when it is created, with the attempt that was
 * issuing commands at that moment ({@link issueIn}, around the synchronous
 * part of an attempt). Every write to a socket goes through a connection's
 * `sendCommand` right before `Command#toWritable`; there a command whose
 * attempt has ended is written as DBSIZE instead: a read of no key, so it
 * changes nothing, is never redirected (MOVED, ASK, TRYAGAIN: a lone one
 * stops being resent), and counts as read-only, so a Cluster pipeline that
 * shares it with live commands is retried on their common redirection as
 * it would have been without it. (PING is not read-only: ioredis then gave
 * the live commands the raw MOVED; EXISTS of the same keys was redirected
 * with an ASK and dragged a live read that had succeeded to the importing
 * node, which answered a miss.) Its late reply settles a promise nobody
 * waits for; it carries no argument of the command (nothing of the value
 * reaches ioredis's tracing channel).
 *
 * Commands issued outside any attempt (publish, QUIT, health checks) are
 * never touched.
 *
 * Nothing in ioredis is patched globally: {@link dropLateCommands} wraps
 * methods of one client's own instances (the client, its cluster node
 * connections, its pipelines and its Lua scripts' Command classes), each
 * wrapper created once per instance, so the per-command cost is one property
 * store and one check.
 */

const ATTEMPT = Symbol("tiercache.attempt");
/** RESP of DBSIZE. */
const DBSIZE = "*1\r\n$6\r\nDBSIZE\r\n";

/** What this module reads and writes on an ioredis Command. */
interface TaggedCommand {
  [ATTEMPT]?: AttemptEnd;
  name: string;
  args: unknown[];
  toWritable(socket: unknown): string | Buffer;
}

type SendCommand = (this: unknown, command: TaggedCommand, stream?: unknown, node?: unknown) => unknown;

interface Sender {
  sendCommand: SendCommand;
}

/** The options object Script.js passes to both the first command and its NOSCRIPT resend. */
interface ScriptCallOptions {
  [ATTEMPT]?: AttemptEnd;
}

type CommandClass = new (name: string, args?: unknown[], options?: ScriptCallOptions, callback?: unknown) => TaggedCommand;

interface ScriptLike {
  Command: CommandClass;
}

type PipelineLike = Sender;

interface HookableClient extends Sender {
  scriptsSet: Record<string, ScriptLike>;
  pipeline(...args: unknown[]): PipelineLike;
  multi(...args: unknown[]): unknown;
  defineCommand(name: string, definition: unknown): void;
}

interface HookableCluster extends HookableClient {
  delayUntilReady(callback: (err?: Error | null) => void): void;
}

/** The attempt issuing commands right now (set only synchronously, by issueIn). */
let current: AttemptEnd | undefined;

/** Clients, nodes and scripts already prepared. */
const wrapped = new WeakSet<object>();

/**
 * Runs `issue` with `attempt` as the owner of every command created
 * synchronously inside it (on a client prepared by {@link dropLateCommands}).
 */
export function issueIn<T>(attempt: AttemptEnd, issue: () => T): T {
  const outer = current;
  current = attempt;
  try {
    return issue();
  } finally {
    current = outer;
  }
}

/**
 * Prepares `client` so that no command issued inside an attempt is written
 * after that attempt ended (see the module comment). Call before the client
 * sends anything (again: no effect); scripts defined later are covered too.
 */
export function dropLateCommands(client: RedisClient): void {
  const hookable = client as unknown as HookableClient;
  if (wrapped.has(hookable)) return;
  wrapSend(hookable);
  wrapPipelines(hookable);
  wrapScripts(hookable);
  if (client instanceof Cluster) {
    for (const node of client.nodes()) wrapSend(node as unknown as Sender);
    client.on("+node", (node: unknown) => wrapSend(node as Sender));
    wrapDelayUntilReady(client as unknown as HookableCluster);
  }
}

/** Tags an untagged command with the current attempt; neuters a command whose attempt ended. */
function admit(command: TaggedCommand): void {
  const attempt = command[ATTEMPT];
  if (attempt === undefined) {
    if (current !== undefined) command[ATTEMPT] = current;
  } else if (attempt.ended) {
    neuter(command);
  }
}

/** From now on `command` is written as DBSIZE (see the module comment). */
function neuter(command: TaggedCommand): void {
  command.name = "dbsize";
  command.args = [];
  command.toWritable = writeDbsize;
}

function writeDbsize(): string {
  return DBSIZE;
}

/** Admits every command passing through `target.sendCommand` (the client, a cluster node). */
function wrapSend(target: Sender): void {
  if (wrapped.has(target)) return;
  wrapped.add(target);
  const send = target.sendCommand;
  target.sendCommand = function (this: unknown, command: TaggedCommand, stream?: unknown, node?: unknown): unknown {
    admit(command);
    return send.call(this, command, stream, node);
  };
}

/**
 * Auto-pipelining and multi() queue commands on a Pipeline, written later by
 * the client; the commands are tagged as they are queued. multi() queues its
 * MULTI before the pipeline is returned: MULTI is tagged when exec() sends
 * the pipeline (through the client's sendCommand, in the same synchronous
 * scope that creates EXEC), so MULTI and EXEC always share their attempt and
 * are written, or neutered, together (never a MULTI left open).
 */
function wrapPipelines(client: HookableClient): void {
  const pipeline = client.pipeline;
  client.pipeline = function (this: HookableClient, ...args: unknown[]): PipelineLike {
    const created = pipeline.apply(this, args);
    wrapPipelineSend(created);
    return created;
  };
  const multi = client.multi;
  client.multi = function (this: HookableClient, ...args: unknown[]): unknown {
    const created = multi.apply(this, args) as PipelineLike | Promise<unknown>;
    if (!(created instanceof Promise)) wrapPipelineSend(created);
    return created;
  };
}

/** Pipeline.prototype.sendCommand, read from the first pipeline seen. */
let pipelineSend: SendCommand | undefined;

function queueAdmitted(this: unknown, command: TaggedCommand): unknown {
  admit(command);
  return pipelineSend!.call(this, command);
}

/** Like wrapSend, without a closure per pipeline (auto-pipelining makes one per batch). */
function wrapPipelineSend(pipeline: PipelineLike): void {
  pipelineSend ??= pipeline.sendCommand;
  pipeline.sendCommand = queueAdmitted;
}

/**
 * A Lua script's commands are made by its own Command class (Script.js). The
 * subclass tags them, and records the attempt on the call's options object,
 * which Script.js hands again to the command it creates, later, to resend the
 * script on NOSCRIPT: that resend belongs to the same attempt.
 */
function wrapScripts(client: HookableClient): void {
  for (const script of Object.values(client.scriptsSet)) tagScript(script);
  const define = client.defineCommand;
  client.defineCommand = function (this: HookableClient, name: string, definition: unknown): void {
    define.call(this, name, definition);
    tagScript(this.scriptsSet[name]!);
  };
}

function tagScript(script: ScriptLike): void {
  if (wrapped.has(script)) return;
  wrapped.add(script);
  const Base = script.Command;
  script.Command = class extends Base {
    constructor(name: string, args?: unknown[], options?: ScriptCallOptions, callback?: unknown) {
      super(name, args, options, callback);
      const attempt = current ?? options?.[ATTEMPT];
      if (attempt !== undefined) {
        this[ATTEMPT] = attempt;
        if (options !== undefined) options[ATTEMPT] = attempt;
      }
    }
  };
}

/**
 * Before its first slot table, a Cluster defers auto-pipelined commands and
 * pipelines until it is ready, and creates the commands then: the callback
 * runs inside the attempt that was issuing when it was deferred.
 */
function wrapDelayUntilReady(cluster: HookableCluster): void {
  const delay = cluster.delayUntilReady;
  cluster.delayUntilReady = function (this: HookableCluster, callback: (err?: Error | null) => void): void {
    const attempt = current;
    delay.call(this, attempt === undefined ? callback : (err?: Error | null) => issueIn(attempt, () => callback(err)));
  };
}
