"""Downtime on chain: a validator keeps its liveness proven and reports validators that are down.

``Staking.proveLiveness`` takes one of a validator's signed precommits for a recent block (the
chain's vote precompile checks it); a validator with no proof for more than
``Staking.livenessWindow`` blocks may be jailed by anyone with ``Staking.reportDowntime``. A
validator node does both on its own, from the certificates it commits:

- when its last proof is half a window old, it submits its own precommit from the newest
  certificate that holds one (a committee is drawn by sortition, so not every certificate does);
- every ``check_every`` blocks it looks for active validators past their window and reports them
  (dry-run first, so a report that another node already made costs nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eth_abi.abi import encode as abi_encode

from powerverse.consensus.certificates import Certificate
from powerverse.consensus.messages import Step, encode
from powerverse.contracts.system import STAKING
from powerverse.node.service import Node
from powerverse.node.system_tx import call_view, has_code, selector, send_system_tx

__all__ = ["PROVE_GAS", "REPORT_GAS", "LivenessReporter"]

log = logging.getLogger(__name__)

PROVE_GAS = 200_000
REPORT_GAS = 300_000
_PROVE = selector("proveLiveness(bytes)")
_REPORT = selector("reportDowntime(bytes32)")
_WINDOW = selector("livenessWindow()")
_LIVENESS_OF = selector("livenessOf(bytes32)")
_ACTIVE = selector("activeValidators()")


@dataclass
class LivenessReporter:
    """Per validator node: proves its own liveness and reports down validators."""

    node: Node
    account_key: bytes
    consensus_key: bytes
    check_every: int = 8
    _proof_due: bool = field(default=False, init=False)
    _reported: dict[bytes, int] = field(default_factory=dict, init=False)

    def after_commit(self, height: int, cert: Certificate) -> None:
        """Called once a block is committed, with its finality certificate.

        Reads the contract only every ``check_every`` blocks (and while an own proof is due),
        so the cost per block stays negligible.
        """
        if height % self.check_every == 0:
            if not has_code(self.node, STAKING):
                return
            self._proof_due = self._own_proof_due(height)
            self._report_down(height)
        if self._proof_due:
            self._prove_own(height, cert)

    def _liveness(self, key: bytes) -> tuple[int, int] | None:
        out = call_view(
            self.node, STAKING, _LIVENESS_OF + abi_encode(["bytes32"], [key]), ["uint64", "uint256"]
        )
        return None if out is None else (int(out[0]), int(out[1]))

    def _own_proof_due(self, height: int) -> bool:
        window = call_view(self.node, STAKING, _WINDOW, ["uint64"])
        own = self._liveness(self.consensus_key)
        if window is None or own is None:  # no Staking, or not a registered validator (yet)
            return False
        return height - own[0] >= int(window[0]) // 2

    def _prove_own(self, height: int, cert: Certificate) -> None:
        vote = next(
            (v for v in cert.votes if v.voter == self.consensus_key and v.step == Step.PRECOMMIT),
            None,
        )
        if vote is None:  # not on this height's committee: try the next certificate
            return
        data = _PROVE + abi_encode(["bytes"], [encode(vote)])
        tx = send_system_tx(self.node, self.account_key, STAKING, data, PROVE_GAS, "liveness proof")
        if tx is not None:
            self._proof_due = False
            log.info("proved liveness at height %d (transaction 0x%s)", height, tx.hex()[:16])

    def _report_down(self, height: int) -> None:
        active = call_view(self.node, STAKING, _ACTIVE, ["address[]", "bytes32[]", "uint256[]"])
        if active is None:
            return
        for key in active[1]:
            key = bytes(key)
            if key == self.consensus_key or height - self._reported.get(key, -(10**9)) < 64:
                continue
            liveness = self._liveness(key)
            if liveness is None or height + 1 <= liveness[1]:
                continue
            data = _REPORT + abi_encode(["bytes32"], [key])
            tx = send_system_tx(
                self.node, self.account_key, STAKING, data, REPORT_GAS, "downtime report"
            )
            if tx is not None:
                self._reported[key] = height
                log.warning(
                    "reported validator 0x%s down since block %d", key.hex()[:16], liveness[0]
                )
