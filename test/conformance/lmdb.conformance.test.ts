import { describeConformance } from "./model-suite.js";

// Deployment: storage "lmdb": memory tier over LMDB in a temporary data directory.
describeConformance("lmdb");
