// Build OpenZeppelin's StandardMerkleTree over ["address"] leaves read as a JSON array from
// stdin; print {root, proofs: {address: [hex...]}} (used by test_airdrop_merkle_oz.py).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const accounts = JSON.parse(input);
const tree = StandardMerkleTree.of(accounts.map((a) => [a]), ["address"]);
const proofs = {};
for (const [i, v] of tree.entries()) proofs[v[0]] = tree.getProof(i);
process.stdout.write(JSON.stringify({ root: tree.root, proofs }));
