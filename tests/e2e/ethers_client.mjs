// ethers v6 against a dev node: the essentials a dapp needs, as named checks.
//
// Usage (from the repository root, so node_modules resolves):
//   node tests/e2e/ethers_client.mjs --rpc http://127.0.0.1:8545 --ws ws://127.0.0.1:8545/ \
//        --artifacts tests/contracts/artifacts
// Prints one JSON line: {"ok": bool, "checks": [{"name", "ok", "detail", "ms"}]}. Exit status 0
// when every check passed, 1 otherwise, 2 on bad usage. Uses dev accounts 5-9 (the web3.py test
// uses 0-4) and signs locally; nothing relies on node-side accounts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Contract,
  ContractFactory,
  HDNodeWallet,
  JsonRpcProvider,
  WebSocketProvider,
  id,
  isError,
  parseEther,
  zeroPadValue,
} from "ethers";

const MNEMONIC = "test test test test test test test test test test test junk";
const CHAIN_ID = 31337n;
const CHECK_TIMEOUT_MS = 30_000;
const SUPPLY = parseEther("1000000");
const TRANSFER_TOPIC = id("Transfer(address,address,uint256)");

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, "");
    if (!["rpc", "ws", "artifacts"].includes(key) || argv[i + 1] === undefined) {
      process.stderr.write(`usage: ethers_client.mjs --rpc URL --ws URL --artifacts DIR\n`);
      process.exit(2);
    }
    opts[key] = argv[i + 1];
  }
  for (const key of ["rpc", "ws", "artifacts"]) {
    if (!opts[key]) {
      process.stderr.write(`missing --${key}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const artifact = (name) => JSON.parse(readFileSync(join(opts.artifacts, `${name}.json`), "utf8"));
const provider = new JsonRpcProvider(opts.rpc, undefined, { pollingInterval: 100, cacheTimeout: -1 });
const wallets = [5, 6, 7, 8, 9].map((i) =>
  HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider),
);
const [w5, w6, w7, w8] = wallets;
const checks = [];
const state = {};

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(err) {
  if (err instanceof Error) {
    const extra = {};
    for (const key of ["code", "reason", "revert", "data", "shortMessage", "info"]) {
      if (err[key] !== undefined) extra[key] = err[key];
    }
    return `${err.stack ?? err.message}\n${stringify(extra)}`;
  }
  return String(err);
}

function stringify(value) {
  return JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v));
}

async function check(name, fn) {
  const started = Date.now();
  try {
    const detail = await withTimeout(Promise.resolve().then(fn), CHECK_TIMEOUT_MS, name);
    checks.push({ name, ok: true, detail: detail ?? null, ms: Date.now() - started });
  } catch (err) {
    checks.push({ name, ok: false, detail: describe(err), ms: Date.now() - started });
  }
}

async function expectRevert(promise) {
  try {
    await promise;
  } catch (err) {
    assert.ok(isError(err, "CALL_EXCEPTION"), `want CALL_EXCEPTION, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail("call did not revert");
}

async function deploy(name, args, wallet) {
  const a = artifact(name);
  const factory = new ContractFactory(a.abi, a.bytecode, wallet);
  const contract = await factory.deploy(...args);
  await contract.waitForDeployment();
  const receipt = await contract.deploymentTransaction().wait();
  assert.equal(receipt.status, 1);
  const address = await contract.getAddress();
  assert.equal(receipt.contractAddress, address);
  assert.equal(await provider.getCode(address), a.deployedBytecode.toLowerCase());
  return { contract, receipt };
}

await check("chain_id", async () => {
  const network = await provider.getNetwork();
  assert.equal(network.chainId, CHAIN_ID);
  return { chainId: network.chainId.toString() };
});

await check("dev_accounts_funded", async () => {
  assert.equal(w5.address, "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc");
  for (const w of wallets) assert.ok((await provider.getBalance(w.address)) > parseEther("1"));
});

await check("deploy_contracts", async () => {
  const token = await deploy("PVTestToken", [SUPPLY], w5);
  const nft = await deploy("PVTestNFT", [], w5);
  const errors = await deploy("CustomErrors", [], w5);
  Object.assign(state, { token: token.contract, nft: nft.contract, errors: errors.contract });
  state.deployBlock = token.receipt.blockNumber;
  assert.equal(await state.token.name(), "PV Test Token");
  assert.equal(await state.token.symbol(), "PVT");
  assert.equal(await state.token.balanceOf(w5.address), SUPPLY);
  return { token: token.receipt.contractAddress, gasUsed: token.receipt.gasUsed };
});

await check("token_transfer", async () => {
  const before = await state.token.balanceOf(w6.address);
  const tx = await state.token.transfer(w6.address, 1000n);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  assert.equal(receipt.hash, tx.hash);
  assert.ok(receipt.gasUsed > 21000n);
  assert.ok(receipt.gasPrice > 0n);
  assert.equal(await state.token.balanceOf(w6.address), before + 1000n);
  assert.equal(receipt.logs.length, 1);
  const parsed = state.token.interface.parseLog(receipt.logs[0]);
  assert.equal(parsed.name, "Transfer");
  assert.deepEqual([...parsed.args], [w5.address, w6.address, 1000n]);
  const t2 = await (await state.token.connect(w6).transfer(w7.address, 10n)).wait();
  state.transfers = { first: receipt, second: t2 };
});

await check("query_filter", async () => {
  const { first, second } = state.transfers;
  const from5 = await state.token.queryFilter(
    state.token.filters.Transfer(w5.address),
    state.deployBlock,
    second.blockNumber,
  );
  const hashes = from5.map((e) => e.transactionHash);
  assert.ok(hashes.includes(first.hash));
  assert.ok(!hashes.includes(second.hash));
  for (const e of from5) assert.equal(e.args.from, w5.address);
  const to7 = await state.token.queryFilter(state.token.filters.Transfer(null, w7.address), state.deployBlock);
  assert.deepEqual(
    to7.map((e) => [e.transactionHash, e.args.value]),
    [[second.hash, 10n]],
  );
  const raw = await provider.getLogs({
    address: await state.token.getAddress(),
    topics: [TRANSFER_TOPIC, null, zeroPadValue(w6.address, 32)],
    fromBlock: first.blockNumber,
    toBlock: first.blockNumber,
  });
  assert.deepEqual(
    raw.map((l) => l.transactionHash),
    [first.hash],
  );
});

await check("custom_error", async () => {
  const err = await expectRevert(state.errors.connect(w6).requireBalance(5n));
  assert.equal(err.revert?.name, "InsufficientBalance", `revert=${stringify(err.revert)}`);
  assert.deepEqual([...err.revert.args], [w6.address, 0n, 5n]);
  const parsed = state.errors.interface.parseError(err.data);
  assert.equal(parsed.name, "InsufficientBalance");
  assert.deepEqual([...parsed.args], [w6.address, 0n, 5n]);
  // contract.fn.estimateGas does not decode errors itself; the revert data must still be there.
  const est = await expectRevert(state.errors.connect(w6).withdraw.estimateGas(1n));
  const estParsed = state.errors.interface.parseError(est.data);
  assert.equal(estParsed?.name, "InsufficientBalance");
  assert.deepEqual([...estParsed.args], [w6.address, 0n, 1n]);
  const own = await expectRevert(state.nft.connect(w6).mint.staticCall(w6.address, 1n));
  assert.equal(own.revert?.name, "OwnableUnauthorizedAccount");
  assert.deepEqual([...own.revert.args], [w6.address]);
  // Sending fails in gas estimation; the error carries the revert data to decode.
  const send = await expectRevert(state.nft.connect(w6).mint(w6.address, 1n));
  assert.deepEqual([...state.nft.interface.parseError(send.data).args], [w6.address]);
  return { data: err.data };
});

await check("revert_reason_string", async () => {
  const err = await expectRevert(state.errors.requireOk(false));
  assert.equal(err.reason, "CustomErrors: not ok");
  assert.equal(err.revert?.name, "Error");
});

await check("panic", async () => {
  const err = await expectRevert(state.errors.divide(1n, 0n));
  assert.equal(err.revert?.name, "Panic");
  assert.equal(BigInt(err.revert.args[0]), 0x12n);
  const assertErr = await expectRevert(state.errors.assertOk(false));
  assert.equal(assertErr.revert?.name, "Panic");
  assert.equal(BigInt(assertErr.revert.args[0]), 0x01n);
});

await check("estimate_gas", async () => {
  const gas = await state.token.transfer.estimateGas(w8.address, 1n);
  assert.ok(gas > 21000n && gas < 100000n, `estimate ${gas}`);
  const receipt = await (await state.token.transfer(w8.address, 1n, { gasLimit: gas })).wait();
  assert.equal(receipt.status, 1);
  assert.ok(receipt.gasUsed <= gas);
  return { estimate: gas };
});

await check("call_at_past_block", async () => {
  const start = await state.errors.value();
  const r1 = await (await state.errors.setValue(start + 1n)).wait();
  const r2 = await (await state.errors.setValue(start + 2n)).wait();
  assert.equal(await state.errors.value(), start + 2n);
  assert.equal(await state.errors.value({ blockTag: r1.blockNumber }), start + 1n);
  assert.equal(await state.errors.value({ blockTag: r1.blockNumber - 1 }), start);
  const [event] = await state.errors.queryFilter(state.errors.filters.ValueChanged(start + 1n), r2.blockNumber, r2.blockNumber);
  assert.deepEqual([...event.args], [start + 1n, start + 2n, w5.address]);
});

await check("fee_data_and_block", async () => {
  const fees = await provider.getFeeData();
  assert.ok(fees.maxFeePerGas !== null && fees.maxPriorityFeePerGas !== null, "no EIP-1559 fees");
  assert.ok(fees.gasPrice > 0n);
  const block = await provider.getBlock("latest");
  assert.ok(block.baseFeePerGas > 0n);
  const tx = await w7.sendTransaction({ to: w8.address, value: 1n });
  assert.equal(tx.type, 2);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  const mined = await provider.getBlock(receipt.blockNumber);
  assert.ok(mined.transactions.includes(tx.hash));
  assert.equal(receipt.gasPrice, mined.baseFeePerGas + tx.maxPriorityFeePerGas);
});

await check("legacy_tx", async () => {
  const { gasPrice } = await provider.getFeeData();
  const tx = await w8.sendTransaction({ to: w7.address, value: 2n, type: 0, gasPrice });
  assert.equal(tx.type, 0);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  assert.equal(receipt.gasPrice, gasPrice);
  const fetched = await provider.getTransaction(tx.hash);
  assert.equal(fetched.type, 0);
  assert.equal(fetched.chainId, CHAIN_ID);
});

const ws = new WebSocketProvider(opts.ws);

await check("ws_block_event", async () => {
  assert.equal((await ws.getNetwork()).chainId, CHAIN_ID);
  let onBlock;
  const seen = [];
  const waiter = new Promise((resolve) => {
    onBlock = (n) => {
      seen.push(n);
      if (state.wsTarget !== undefined && n >= state.wsTarget) resolve(n);
    };
  });
  await ws.on("block", onBlock);
  await ws.send("eth_blockNumber", []); // round trip: the subscription is in place
  const receipt = await (await w6.sendTransaction({ to: w7.address, value: 3n })).wait();
  state.wsTarget = receipt.blockNumber;
  if (seen.some((n) => n >= receipt.blockNumber)) onBlock(Math.max(...seen));
  const n = await waiter;
  await ws.off("block", onBlock);
  return { block: n, tx: receipt.blockNumber };
});

await check("ws_contract_event", async () => {
  const tokenWs = new Contract(await state.token.getAddress(), state.token.interface, ws);
  // With a filter object ethers passes only the payload; with an event name, the args first.
  let onFiltered;
  let onNamed;
  const filtered = new Promise((resolve) => {
    onFiltered = (...args) => resolve(args.at(-1));
  });
  const named = new Promise((resolve) => {
    onNamed = (from, to, value, payload) => {
      if (to === w8.address && value === 77n) resolve({ from, to, value, payload });
    };
  });
  const filter = tokenWs.filters.Transfer(null, w8.address);
  await tokenWs.on(filter, onFiltered);
  await tokenWs.on("Transfer", onNamed);
  await ws.send("eth_blockNumber", []); // round trip: the subscriptions are in place
  const tx = await state.token.transfer(w8.address, 77n);
  const [payload, event] = await Promise.all([filtered, named]);
  await tokenWs.off(filter, onFiltered);
  await tokenWs.off("Transfer", onNamed);
  assert.equal(payload.log.transactionHash, tx.hash);
  assert.deepEqual([...payload.log.args], [w5.address, w8.address, 77n]);
  assert.equal(event.from, w5.address);
  assert.equal(event.payload.log.transactionHash, tx.hash);
  assert.equal(event.payload.log.address, await state.token.getAddress());
  const receipt = await tx.wait();
  assert.equal(event.payload.log.blockNumber, receipt.blockNumber);
});

await ws.destroy();
provider.destroy();
const ok = checks.every((c) => c.ok);
process.stdout.write(`${stringify({ ok, checks })}\n`);
process.exit(ok ? 0 : 1);
