#!/usr/bin/env node
/**
 * Prints the tables of a results file again (default bench/results/latest.json):
 *   node bench/table.js [bench/results/<timestamp>.json]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hitRatioTable, mainTable } from "./lib/report.js";

const file = process.argv[2] ?? fileURLToPath(new URL("results/latest.json", import.meta.url));
const results = JSON.parse(readFileSync(file, "utf8"));
let out = `tiercache benchmarks, ${results.date}${results.quick ? " (QUICK)" : ""}; node ${results.node}, ${results.cpus} × ${results.cpuModel}; ${results.totalSeconds.toFixed(0)} s\n\n`;
if (results.rows.length > 0) out += `${mainTable(results.rows)}\n`;
for (const table of results.tables ?? []) out += `\n${table.title}\n\n${hitRatioTable(table)}\n${(table.notes ?? []).map((note) => `\n${note}`).join("")}${table.notes ? "\n" : ""}`;
const count = (v) => results.rows.filter((r) => r.verdict === v).length;
out += `\ngoals: ${count("met")} met, ${count("missed")} missed, ${count("n/a")} not available yet\n`;
process.stdout.write(out);
