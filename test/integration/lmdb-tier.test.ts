import { LmdbTier } from "../../server/tiers/lmdb-tier.js";
import { describeDurableTier } from "../conformance/durable-tier-suite.js";
import { tempDir } from "../helpers/test-server.js";

describeDurableTier("local (LMDB)", async (clock) => {
  const dir = tempDir();
  const tier = LmdbTier.open({ dataDir: dir.path, clock: clock.now, sweepBatch: 1000 });
  return {
    tier,
    dispose: async () => {
      await tier.close();
      dir.remove();
    },
  };
});
