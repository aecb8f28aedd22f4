// Compiles Solidity with the pinned `solc` npm package (the official compiler as WebAssembly).
//
// Usage: node solc_compile.mjs --base-path DIR [--remap PREFIX=DIR ...] < input.json > output.json
//
// stdin:  solc standard-JSON input (sources given by content).
// stdout: solc standard-JSON output, plus a top-level "solcVersion" with the compiler's long version.
// Imports that are not among the given sources are read from disk: a path starting with a --remap
// PREFIX is read from that DIR, any other path from --base-path. Source unit names are kept as
// written (e.g. "@openzeppelin/contracts/token/ERC20/ERC20.sol"), so metadata and bytecode do not
// depend on where the repository lies. Exit status: 0 when solc ran (check "errors" in the
// output), 2 on bad usage or unreadable input.
import { readFileSync } from "node:fs";
import { isAbsolute, join, normalize, sep } from "node:path";
import solc from "solc";

function usage(message) {
  process.stderr.write(`solc_compile.mjs: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { basePath: null, remaps: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`missing value after ${arg}`);
    if (arg === "--base-path") {
      options.basePath = value;
    } else if (arg === "--remap") {
      const eq = value.indexOf("=");
      if (eq <= 0) usage(`bad --remap ${JSON.stringify(value)} (want PREFIX=DIR)`);
      options.remaps.push({ prefix: value.slice(0, eq), dir: value.slice(eq + 1) });
    } else {
      usage(`unknown argument ${JSON.stringify(arg)}`);
    }
    i += 1;
  }
  if (options.basePath === null) usage("--base-path is required");
  return options;
}

function resolver(options) {
  return (importPath) => {
    if (isAbsolute(importPath) || normalize(importPath).split(sep).includes("..")) {
      return { error: `import outside the source tree refused: ${importPath}` };
    }
    let file = join(options.basePath, importPath);
    for (const { prefix, dir } of options.remaps) {
      if (importPath.startsWith(prefix)) {
        file = join(dir, importPath.slice(prefix.length));
        break;
      }
    }
    try {
      return { contents: readFileSync(file, "utf8") };
    } catch (err) {
      return { error: `cannot read ${importPath} (${file}): ${err.code ?? err.message}` };
    }
  };
}

const options = parseArgs(process.argv.slice(2));
let input;
try {
  input = readFileSync(0, "utf8");
  JSON.parse(input);
} catch (err) {
  usage(`stdin is not JSON: ${err.message}`);
}
const output = JSON.parse(solc.compile(input, { import: resolver(options) }));
output.solcVersion = solc.version();
process.stdout.write(JSON.stringify(output));
