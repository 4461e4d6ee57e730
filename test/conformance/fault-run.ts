import { keyAt } from "../helpers/conformance-keys.js";
import { SUITE_NAMESPACES } from "./ops.js";
import { runOp } from "./run-op.js";
import { predict, type RunContext } from "./step.js";

/** The namespaces the final reads cover: each once ("" is "default"). */
const FINAL_NAMESPACES = SUITE_NAMESPACES.filter((ns) => ns !== "");

/**
 * Ends a run with faults: waits for its last fault to end, then has every
 * client read every valid key of the run in every namespace (getMany, held
 * to the bound), so that each such run checks that the deployment came back
 * to what the model holds, whatever its last steps were: acknowledged
 * writes kept, those with an unknown outcome one way or the other.
 */
export async function finishFaultRun(ctx: RunContext): Promise<void> {
  await ctx.faults?.healed();
  const keys = ctx.pool.map((_, i) => i).filter((i) => predict(() => ctx.model.lookup("default", keyAt(ctx.pool, i))).ok);
  if (keys.length === 0) return;
  try {
    for (let client = 0; client < ctx.deployment.clients.length; client++) {
      for (const ns of FINAL_NAMESPACES) await runOp({ op: "getMany", client, ns, keys }, ctx);
    }
  } catch (err) {
    throw new Error(`after the last step, once every fault had ended: ${(err as Error).message}`, { cause: err });
  }
}
