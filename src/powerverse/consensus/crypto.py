"""The real cryptography behind consensus checks: ed25519 signatures and ECVRF sortition."""

from __future__ import annotations

from dataclasses import dataclass

from powerverse.consensus import sortition
from powerverse.consensus.messages import Credential
from powerverse.crypto import vrf
from powerverse.crypto.consensus_keys import ConsensusKey, verify
from powerverse.crypto.exceptions import CryptoError


class RealCrypto:
    """``Crypto`` on libsodium: what nodes use."""

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``public_key``'s ed25519 signature of ``message``."""
        try:
            verify(public_key, message, signature)
        except CryptoError:
            return False
        return True

    def verify_sort(
        self, public_key: bytes, credential: Credential, seed: bytes, tau: int, role: bytes,
        w: int, total: int,
    ) -> int:  # fmt: skip
        """Sortition's j for the credential (0 when invalid or not selected)."""
        return sortition.verify_sort(
            public_key, credential.vrf_hash, credential.proof, seed, tau, role, w, total
        )

    def priority(self, credential: Credential) -> bytes:
        """The lowest sub-user hash of a proposer credential."""
        return sortition.priority(credential.vrf_hash, max(1, credential.weight))

    def vrf_output(self, public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
        """The VRF output of a valid proof; None otherwise."""
        try:
            return vrf.verify(public_key, proof, alpha)
        except CryptoError:
            return None


@dataclass(frozen=True)
class KeySigner:
    """``Signer`` for a validator's ed25519 consensus key."""

    key: ConsensusKey

    @property
    def public_key(self) -> bytes:
        """The validator's consensus public key."""
        return self.key.public_key

    def sign(self, message: bytes) -> bytes:
        """ed25519 signature."""
        return self.key.sign(message)

    def sortition(
        self, seed: bytes, tau: int, role: bytes, w: int, total: int
    ) -> Credential | None:
        """This key's credential for a role, or None when no sub-user is selected."""
        if w <= 0:
            return None
        vrf_hash, proof, j = sortition.sortition(self.key.seed, seed, tau, role, w, total)
        return Credential(vrf_hash, proof, j) if j > 0 else None

    def vrf_prove(self, alpha: bytes) -> bytes:
        """The VRF proof of ``alpha``."""
        return self.key.vrf_prove(alpha)
