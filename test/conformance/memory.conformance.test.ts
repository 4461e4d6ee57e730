import { describeConformance } from "./model-suite.js";

// Deployment: storage "memory": the server memory tier only.
describeConformance("memory");
