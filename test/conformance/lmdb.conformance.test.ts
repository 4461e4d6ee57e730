import { describeConformance } from "./model-suite.js";

// Deployment: storage "local": memory tier over LMDB in a temporary data directory.
describeConformance("lmdb");
