import { describeConformance } from "./model-suite.js";

// Deployment: two server instances over one redis-server, a client with a local tier on each.
describeConformance("two-instances");
