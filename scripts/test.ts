// `npm test`: typecheck, lint, then every Vitest project (unit, workers, integration).
// Vitest's integration project starts and stops the local stack and `wrangler dev` itself.
// The last line is a plain "N passed, N failed, N skipped" summary that any CI can read.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const resultsFile = join(root, ".data", "test-results.json");

function step(title: string, cmd: string, args: string[]): number {
  console.log(`\n[test] ${title}: ${cmd} ${args.join(" ")}`);
  const started = Date.now();
  const run = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: process.env });
  console.log(
    `[test] ${title} ${run.status === 0 ? "ok" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
  );
  return run.status ?? 1;
}

const extraArgs = process.argv.slice(2);
let failedChecks = 0;
failedChecks += step("typecheck", "tsc", ["--noEmit", "-p", "tsconfig.json"]) === 0 ? 0 : 1;
failedChecks += step("lint", "biome", ["check", "."]) === 0 ? 0 : 1;

mkdirSync(join(root, ".data"), { recursive: true });
rmSync(resultsFile, { force: true });
const vitestStatus = step("tests", "vitest", [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${resultsFile}`,
  ...extraArgs,
]);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const results = JSON.parse(readFileSync(resultsFile, "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
  };
  passed = results.numPassedTests;
  failed = results.numFailedTests;
  skipped = results.numPendingTests + results.numTodoTests;
} catch {
  failed += 1; // no report means the run itself broke
}
failed += failedChecks;
if (vitestStatus !== 0 && failed === 0) failed = 1;

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && vitestStatus === 0 ? 0 : 1);
