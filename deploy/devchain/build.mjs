// Compiles contracts/*.sol with solc-js (--standard-json: evmVersion cancun, optimizer on).
// Artifacts (ABI, bytecode, selectors) go to a cache keyed by a hash of the compiler,
// settings and sources, so a second start compiles nothing. The ABIs are committed in
// schemas/abi/<Contract>.json; --write-abi refreshes them and --check-abi fails when they
// differ from what the sources produce.
//
//   node build.mjs [--cache DIR] [--write-abi] [--check-abi]
// prints the artifacts file path on stdout.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const deployDir = path.resolve(here, '..');
const repo = path.resolve(deployDir, '..');
const require = createRequire(path.join(deployDir, 'package.json'));
export const ABI_DIR = path.join(repo, 'schemas', 'abi');
// Contracts whose ABI the backend (and tests) read; abstract bases and interfaces are not.
export const EXPORTED = ['PaimonVault', 'MockUSDT', 'RWAToken', 'MockAggregator', 'MockMarket'];

const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } },
};

function sources() {
  const dir = path.join(here, 'contracts');
  const out = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.sol')).sort()) {
    out[`contracts/${f}`] = { content: fs.readFileSync(path.join(dir, f), 'utf8') };
  }
  return out;
}

function findImports(p) {
  try {
    return { contents: fs.readFileSync(require.resolve(p), 'utf8') };
  } catch (e) {
    return { error: `import not found: ${p}` };
  }
}

function sourceHash(src) {
  const h = createHash('sha256');
  const solcPkg = require('solc/package.json');
  const ozPkg = require('@openzeppelin/contracts/package.json');
  h.update(`solc ${solcPkg.version}\noz ${ozPkg.version}\n${JSON.stringify(SETTINGS)}\n`);
  for (const [name, { content }] of Object.entries(src)) h.update(`${name}\n${content}\n`);
  return h.digest('hex').slice(0, 16);
}

function compile(src) {
  const solc = require('solc');
  const input = { language: 'Solidity', sources: src, settings: SETTINGS };
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  if (errors.length) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  const contracts = {};
  for (const file of Object.keys(out.contracts)) {
    if (!file.startsWith('contracts/')) continue;
    for (const [name, c] of Object.entries(out.contracts[file])) {
      if (!c.evm.bytecode.object) continue; // abstract or interface
      contracts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, selectors: c.evm.methodIdentifiers };
    }
  }
  for (const name of EXPORTED) if (!contracts[name]) throw new Error(`contract ${name} missing`);
  return contracts;
}

export function abiText(abi) {
  return `${JSON.stringify(abi, null, 2)}\n`;
}

// Returns { file, hash, contracts } compiling only when the cache has no entry for the hash.
export function build(cacheDir) {
  const src = sources();
  const hash = sourceHash(src);
  const file = path.join(cacheDir, `artifacts-${hash}.json`);
  if (fs.existsSync(file)) return { file, hash, contracts: JSON.parse(fs.readFileSync(file, 'utf8')).contracts };
  const contracts = compile(src);
  fs.mkdirSync(cacheDir, { recursive: true });
  // Written under a unique name then renamed: parallel runs may share the cache.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ hash, contracts }));
  fs.renameSync(tmp, file);
  return { file, hash, contracts };
}

function main(argv) {
  let cache = process.env.PAIMON_DEVCHAIN_CACHE || path.join(repo, '.run', 'devchain-cache');
  let writeAbi = false;
  let checkAbi = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cache') cache = argv[++i];
    else if (argv[i] === '--write-abi') writeAbi = true;
    else if (argv[i] === '--check-abi') checkAbi = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  const { file, contracts } = build(path.resolve(cache));
  let stale = [];
  for (const name of EXPORTED) {
    const target = path.join(ABI_DIR, `${name}.json`);
    const want = abiText(contracts[name].abi);
    const have = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null;
    if (have === want) continue;
    if (writeAbi) {
      fs.mkdirSync(ABI_DIR, { recursive: true });
      fs.writeFileSync(target, want);
      process.stderr.write(`build: wrote ${path.relative(repo, target)}\n`);
    } else {
      stale.push(path.relative(repo, target));
    }
  }
  if (checkAbi && stale.length) {
    process.stderr.write(`build: ABI files out of date with the sources: ${stale.join(' ')}\n`);
    process.stderr.write('build: run `node deploy/devchain/build.mjs --write-abi` and commit them\n');
    process.exit(1);
  }
  process.stdout.write(`${file}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`build: ${e.message}\n`);
    process.exit(1);
  }
}
