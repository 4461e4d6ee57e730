import { describeConformance } from "./model-suite.js";

// Deployment: storage "redis": memory tier over its own redis-server.
describeConformance("redis");
