// Compiles Emitter.sol with the repo's solc-js and writes <out>/Emitter.abi.json (the
// ABI the listener loads) and <out>/Emitter.bin (creation bytecode, hex).
//   node build.mjs <out-dir>
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');
const require = createRequire(path.join(repo, 'deploy', 'package.json'));
const out = process.argv[2];
if (!out) { console.error('usage: build.mjs <out-dir>'); process.exit(2); }
fs.mkdirSync(out, { recursive: true });
if (fs.existsSync(path.join(out, 'Emitter.bin'))) process.exit(0);
const solc = require('solc');
const input = {
  language: 'Solidity',
  sources: { 'Emitter.sol': { content: fs.readFileSync(path.join(here, 'Emitter.sol'), 'utf8') } },
  settings: { evmVersion: 'cancun', optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
};
const res = JSON.parse(solc.compile(JSON.stringify(input)));
const errs = (res.errors || []).filter((e) => e.severity === 'error');
if (errs.length) { console.error(errs.map((e) => e.formattedMessage).join('\n')); process.exit(1); }
const c = res.contracts['Emitter.sol'].Emitter;
fs.writeFileSync(path.join(out, 'Emitter.abi.json'), JSON.stringify(c.abi, null, 1));
fs.writeFileSync(path.join(out, 'Emitter.bin'), '0x' + c.evm.bytecode.object);
