// Deploys the fixture contracts to a running anvil through plain JSON-RPC (anvil's unlocked
// accounts sign), grants the roles to distinct accounts, seeds a fund with value in every
// tier and one pending redemption, then writes devchain.json for the daemons and tests.
//
//   node deploy.mjs --rpc URL --ws URL --chain-id N --accounts anvil-config.json
//                   --artifacts FILE --out devchain.json [--block-time SECONDS]
//                   [--extra-assets N] [--profile fixture|healthy]
// --extra-assets N lists N more assets after the fixture's four, each with its own token,
//   aggregator and a holding (benchmarks of many-asset funds; MAX_ASSETS is 64).
// --profile fixture (default): the fixture as the tests' hand computations know it (top-3
//   78.85 % of NAV: concentration is critical on purpose). healthy: the local demo fund —
//   targets equalised over all listed assets (6 extra unless --extra-assets says otherwise)
//   and positions traded to them, so the largest asset is <= 30 %, the top 3 <= 60 % and
//   L1 about 10 % of NAV. Either way the four fixture assets keep their addresses.
// With at least 13 anvil accounts, account 12 ("guardian") gets OPERATOR_ROLE last: the
// key paimon-risk sends setEmergencyMode with (its own, so no other outbox shares its nonces).
// Function selectors come from the compiler's methodIdentifiers, never from hand-typed hex.
import fs from 'node:fs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['rpc', 'ws', 'chain-id', 'accounts', 'artifacts', 'out']) {
  if (!args[k]) {
    process.stderr.write(`deploy: missing --${k}\n`);
    process.exit(2);
  }
}

const E18 = 10n ** 18n;
const extraAssets = Number(args['extra-assets'] ?? 0);
const profile = args.profile || 'fixture';
if (!Number.isInteger(extraAssets) || extraAssets < 0 || extraAssets > 60) throw new Error('--extra-assets must be 0..60');
if (!['fixture', 'healthy'].includes(profile)) throw new Error('--profile must be fixture or healthy');
const artifacts = JSON.parse(fs.readFileSync(args.artifacts, 'utf8')).contracts;
const anvilCfg = JSON.parse(fs.readFileSync(args.accounts, 'utf8'));
const addrs = anvilCfg.available_accounts;
const keys = anvilCfg.private_keys;
if (addrs.length < 12) throw new Error('anvil must be started with at least 12 accounts');
const acct = (i) => ({ address: addrs[i], privateKey: keys[i] });

let rpcId = 0;
async function rpc(method, params = []) {
  const res = await fetch(args.rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}${body.error.data ? ` ${JSON.stringify(body.error.data)}` : ''}`);
  return body.result;
}

// --- minimal ABI encoder: the static types the seeding uses, plus string.
function word(v) {
  return BigInt.asUintN(256, BigInt(v)).toString(16).padStart(64, '0');
}
function encodeArgs(types, values) {
  if (types.length !== values.length) throw new Error(`want ${types.length} args, got ${values.length}`);
  const head = [];
  const tail = [];
  let tailLen = types.length * 32;
  types.forEach((t, i) => {
    const v = values[i];
    if (t === 'address') head.push(v.toLowerCase().replace(/^0x/, '').padStart(64, '0'));
    else if (t === 'bool') head.push(word(v ? 1 : 0));
    else if (t === 'bytes32') head.push(v.replace(/^0x/, '').padEnd(64, '0'));
    else if (/^u?int\d*$/.test(t)) head.push(word(v));
    else if (t === 'string') {
      const bytes = Buffer.from(v, 'utf8');
      const padded = bytes.toString('hex').padEnd(Math.ceil(bytes.length / 32) * 64, '0');
      head.push(word(tailLen));
      tail.push(word(bytes.length) + padded);
      tailLen += 32 + padded.length / 2;
    } else throw new Error(`encoder: unsupported type ${t}`);
  });
  return head.join('') + tail.join('');
}
function typesOf(sig) {
  const inner = sig.slice(sig.indexOf('(') + 1, -1);
  return inner ? inner.split(',') : [];
}
function calldata(contract, sig, values) {
  const sel = artifacts[contract].selectors[sig];
  if (!sel) throw new Error(`${contract} has no function ${sig}`);
  return `0x${sel}${encodeArgs(typesOf(sig), values)}`;
}

async function waitReceipt(hash) {
  for (let i = 0; i < 600; i++) {
    const r = await rpc('eth_getTransactionReceipt', [hash]);
    if (r) {
      if (r.status !== '0x1') throw new Error(`transaction ${hash} reverted`);
      return r;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no receipt for ${hash}`);
}

async function send(from, to, data) {
  const tx = { from: from.address, data };
  if (to) tx.to = to;
  return waitReceipt(await rpc('eth_sendTransaction', [tx]));
}

async function deploy(from, contract, ctorTypes = [], ctorArgs = []) {
  const r = await send(from, null, artifacts[contract].bytecode + encodeArgs(ctorTypes, ctorArgs));
  return { address: r.contractAddress, block: Number(r.blockNumber) };
}

const tx = (from, contract, addr, sig, ...values) => send(from, addr, calldata(contract, sig, values));
async function call(contract, addr, sig, ...values) {
  return rpc('eth_call', [{ to: addr, data: calldata(contract, sig, values) }, 'latest']);
}

const ASSETS = [
  { symbol: 'USTB', name: 'Tokenized US Treasury Bill', decimals: 18, tier: 2, answer: 105_000_000n,
    target: 3500, min: 2500, max: 4500, buy: 600_000n },
  { symbol: 'PMMF', name: 'Paimon Money Market Fund', decimals: 18, tier: 2, answer: 100_000_000n,
    target: 2500, min: 1500, max: 3500, buy: 430_000n },
  { symbol: 'RWRE', name: 'Real Estate Income Token', decimals: 18, tier: 3, answer: 5_240_000_000n,
    target: 2000, min: 1000, max: 3000, buy: 350_000n },
  // 6 decimals on purpose: the backend must read each token's decimals.
  { symbol: 'PCRD', name: 'Private Credit Note', decimals: 6, tier: 3, answer: 987_000_000n,
    target: 1000, min: 500, max: 1500, buy: 160_000n },
];
const DEPOSITS = [1_000_000n, 500_000n, 250_000n];
const PENDING_REDEEM_SHARES = 20_000n;

// N more assets, each a token + aggregator listed at target 0 (fixture profile: outside the
// allocation, so the fixture's targets stay as they are) with 1,000 USDT bought of each.
async function seedExtra(admin, rebalancer, vault, market, n) {
  const out = [];
  for (let i = 1; i <= n; i++) {
    const symbol = `XA${String(i).padStart(2, '0')}`;
    const name = `Extra Asset ${i}`;
    const tier = i % 2 ? 2 : 3;
    const token = await deploy(admin, 'RWAToken', ['string', 'string', 'uint8', 'address'], [name, symbol, 18, admin.address]);
    const agg = await deploy(admin, 'MockAggregator', ['uint8', 'string', 'int256', 'address'],
      [8, `${symbol} / USD`, 100_000_000n + BigInt(i) * 2_500_000n, admin.address]);
    await tx(admin, 'RWAToken', token.address, 'setMinter(address,bool)', market, true);
    await tx(admin, 'MockMarket', market, 'setAsset(address,address)', token.address, agg.address);
    await tx(admin, 'PaimonVault', vault, 'addAsset(address,address,uint8,uint16,uint16,uint16)',
      token.address, agg.address, tier, 0, 0, 10000);
    const usdtIn = 1_000n * E18;
    const quote = BigInt(await call('MockMarket', market, 'quoteBuy(address,uint256)', token.address, usdtIn));
    await tx(rebalancer, 'PaimonVault', vault, 'purchaseAsset(address,uint256,uint256)', token.address, usdtIn, quote);
    out.push({ symbol, name, decimals: 18, token: token.address, aggregator: agg.address,
      tier: tier === 2 ? 'L2' : 'L3', targetBps: 0, minBps: 0, maxBps: 10000 });
  }
  return out;
}

// Healthy demo fund: every listed asset gets the same target (90 % of NAV split evenly, so
// about 10 % stays in L1), band +-50 % of it; then sell what is above target, buy what is below.
async function equalise(admin, rebalancer, vault, market, assets) {
  const w = Math.floor(9000 / assets.length);
  const lo = Math.floor(w / 2);
  const hi = Math.min(10000, w + lo);
  // lower targets first: the vault refuses a sum above 100 % at every step
  const order = [...assets].sort((a, b) => (b.targetBps - w) - (a.targetBps - w));
  for (const a of order) {
    await tx(admin, 'PaimonVault', vault, 'setAssetTarget(address,uint16,uint16,uint16)', a.token, w, lo, hi);
    Object.assign(a, { targetBps: w, minBps: lo, maxBps: hi });
  }
  const nav = BigInt(await call('PaimonVault', vault, 'totalAssets()'));
  const want = (nav * BigInt(w)) / 10000n;
  const value = async (a) => BigInt(await call('PaimonVault', vault, 'assetValue(address)', a.token));
  for (const a of assets) {
    const v = await value(a);
    if (v <= want) continue;
    const bal = BigInt(await call('RWAToken', a.token, 'balanceOf(address)', vault));
    const amount = (bal * (v - want)) / v;
    if (amount === 0n) continue;
    const quote = BigInt(await call('MockMarket', market, 'quoteSell(address,uint256)', a.token, amount));
    await tx(rebalancer, 'PaimonVault', vault, 'redeemAsset(address,uint256,uint256)', a.token, amount, quote);
  }
  for (const a of assets) {
    const v = await value(a);
    if (v >= want) continue;
    const usdtIn = want - v;
    const quote = BigInt(await call('MockMarket', market, 'quoteBuy(address,uint256)', a.token, usdtIn));
    await tx(rebalancer, 'PaimonVault', vault, 'purchaseAsset(address,uint256,uint256)', a.token, usdtIn, quote);
  }
}

async function main() {
  const chainId = Number(await rpc('eth_chainId'));
  if (chainId !== Number(args['chain-id'])) throw new Error(`anvil chain id ${chainId} != ${args['chain-id']}`);
  const admin = acct(0);
  const operator = acct(1);
  const rebalancer = acct(2);
  const approvers = [acct(3), acct(4), acct(5)];
  const investors = [acct(6), acct(7), acct(8)];
  const spare = [acct(9), acct(10), acct(11)];

  const usdt = await deploy(admin, 'MockUSDT', ['address'], [admin.address]);
  const market = await deploy(admin, 'MockMarket', ['address', 'address'], [usdt.address, admin.address]);
  const vault = await deploy(admin, 'PaimonVault', ['address', 'address', 'address'],
    [usdt.address, admin.address, market.address]);
  await tx(admin, 'MockUSDT', usdt.address, 'setMinter(address,bool)', market.address, true);

  const role = async (name) => call('PaimonVault', vault.address, `${name}()`);
  const grant = async (name, who) =>
    tx(admin, 'PaimonVault', vault.address, 'grantRole(bytes32,address)', await role(name), who.address);
  await grant('OPERATOR_ROLE', operator);
  await grant('REBALANCER_ROLE', rebalancer);
  for (const a of approvers) await grant('VIP_APPROVER_ROLE', a);

  const assets = [];
  for (const a of ASSETS) {
    const token = await deploy(admin, 'RWAToken', ['string', 'string', 'uint8', 'address'],
      [a.name, a.symbol, a.decimals, admin.address]);
    const agg = await deploy(admin, 'MockAggregator', ['uint8', 'string', 'int256', 'address'],
      [8, `${a.symbol} / USD`, a.answer, admin.address]);
    await tx(admin, 'RWAToken', token.address, 'setMinter(address,bool)', market.address, true);
    await tx(admin, 'MockMarket', market.address, 'setAsset(address,address)', token.address, agg.address);
    await tx(admin, 'PaimonVault', vault.address, 'addAsset(address,address,uint8,uint16,uint16,uint16)',
      token.address, agg.address, a.tier, a.target, a.min, a.max);
    assets.push({ symbol: a.symbol, name: a.name, decimals: a.decimals, token: token.address,
      aggregator: agg.address, tier: a.tier === 2 ? 'L2' : 'L3', targetBps: a.target, minBps: a.min,
      maxBps: a.max, buyUsdt: a.buy });
  }

  for (let i = 0; i < investors.length; i++) {
    const inv = investors[i];
    await tx(admin, 'MockUSDT', usdt.address, 'mint(address,uint256)', inv.address, 2_000_000n * E18);
    await tx(inv, 'MockUSDT', usdt.address, 'approve(address,uint256)', vault.address, DEPOSITS[i] * E18);
    await tx(inv, 'PaimonVault', vault.address, 'deposit(uint256,address)', DEPOSITS[i] * E18, inv.address);
  }

  // Buy every asset at the quoted amount so all tiers hold value (minOut = quote exercises the guard).
  for (const a of assets) {
    const usdtIn = a.buyUsdt * E18;
    const quote = BigInt(await call('MockMarket', market.address, 'quoteBuy(address,uint256)', a.token, usdtIn));
    await tx(rebalancer, 'PaimonVault', vault.address, 'purchaseAsset(address,uint256,uint256)', a.token, usdtIn, quote);
    delete a.buyUsdt;
  }

  const inv3 = investors[2];
  await tx(inv3, 'PaimonVault', vault.address, 'requestRedeem(uint256,address,address,uint8)',
    PENDING_REDEEM_SHARES * E18, inv3.address, inv3.address, 0);

  const extra = await seedExtra(admin, rebalancer, vault.address, market.address,
    profile === 'healthy' && args['extra-assets'] === undefined ? 6 : extraAssets);
  assets.push(...extra);
  if (profile === 'healthy') await equalise(admin, rebalancer, vault.address, market.address, assets);

  let guardian;
  if (addrs.length >= 13) {
    guardian = acct(12);
    await grant('OPERATOR_ROLE', guardian);
  }

  const blockTime = Number(args['block-time'] || 0);
  if (blockTime > 0) await rpc('evm_setIntervalMining', [blockTime]);

  const out = {
    chainId,
    rpcUrl: args.rpc,
    wsUrl: args.ws,
    deployBlock: usdt.block,
    contracts: { vault: vault.address, usdt: usdt.address, market: market.address, assets },
    accounts: { admin, operator, rebalancer, approvers, investors, spare, ...(guardian ? { guardian } : {}) },
  };
  const tmp = `${args.out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`);
  fs.renameSync(tmp, args.out);
}

main().catch((e) => {
  process.stderr.write(`deploy: ${e.message}\n`);
  process.exit(1);
});
