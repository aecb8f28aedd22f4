"""Reasons the transaction pool refuses a transaction, worded as go-ethereum words them.

Wallets and libraries (MetaMask, ethers, web3.py) match on geth's error text, so every
exception carries that text in ``message``; the RPC layer passes it on unchanged.

TxPoolError
├── InvalidTransactionEncodingError   "rlp: ...", "typed transaction too short"
├── OversizedDataError                "oversized data: transaction size N, limit M"
├── TxTypeNotSupportedError           "transaction type not supported"
├── NotReplayProtectedError           "only replay-protected (EIP-155) transactions ..."
├── InvalidSenderError                "invalid sender: ..."
│   └── InvalidChainIdError           "invalid sender: invalid chain id for signer"
├── GasLimitExceededError             "exceeds block gas limit"
├── FeeCapVeryHighError               "max fee per gas higher than 2^256-1"
├── TipVeryHighError                  "max priority fee per gas higher than 2^256-1"
├── TipAboveFeeCapError               "max priority fee per gas higher than max fee per gas"
├── NonceMaxError                     "nonce has max value"
├── MaxInitCodeSizeExceededError      "max initcode size exceeded: code size N, limit M"
├── IntrinsicGasTooLowError           "intrinsic gas too low: gas N, minimum needed M"
│   └── FloorDataGasTooLowError       "insufficient gas for floor data gas cost: gas N, ..."
├── UnderpricedError                  "transaction underpriced: tip needed N, tip permitted M"
├── SetCodeTxCreateError              "EIP-7702 transaction cannot be used to create contract"
├── EmptyAuthListError                "EIP-7702 transaction with empty auth list"
├── AlreadyKnownError                 "already known"
├── NonceTooLowError                  "nonce too low: address 0x.., tx: N state: M"
├── NonceTooHighError                 "nonce too high: address 0x.., tx: N state: M"
├── InsufficientFundsError            "insufficient funds for gas * price + value: ..."
├── ReplacementUnderpricedError       "replacement transaction underpriced"
├── AccountLimitExceededError         "account limit exceeded: pooled N txs"
└── TxPoolOverflowError               "txpool is full"
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

__all__ = [
    "AccountLimitExceededError",
    "AlreadyKnownError",
    "EmptyAuthListError",
    "FeeCapVeryHighError",
    "FloorDataGasTooLowError",
    "GasLimitExceededError",
    "InsufficientFundsError",
    "IntrinsicGasTooLowError",
    "InvalidChainIdError",
    "InvalidSenderError",
    "InvalidTransactionEncodingError",
    "MaxInitCodeSizeExceededError",
    "NonceMaxError",
    "NonceTooHighError",
    "NonceTooLowError",
    "NotReplayProtectedError",
    "OversizedDataError",
    "ReplacementUnderpricedError",
    "SetCodeTxCreateError",
    "TipAboveFeeCapError",
    "TipVeryHighError",
    "TxPoolError",
    "TxPoolOverflowError",
    "TxTypeNotSupportedError",
    "UnderpricedError",
]


def _address(address: bytes) -> str:
    """Formats an address the way geth prints common.Address (EIP-55 checksum)."""
    return to_checksum_address(address)


class TxPoolError(Exception):
    """A transaction was refused by the pool; ``message`` is geth's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTransactionEncodingError(TxPoolError):
    """The raw bytes are not a well-formed transaction."""


class OversizedDataError(TxPoolError):
    """The encoded transaction is larger than the pool accepts (a DoS limit)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"oversized data: transaction size {size}, limit {limit}")
        self.size = size
        self.limit = limit


class TxTypeNotSupportedError(TxPoolError):
    """The EIP-2718 type is unknown or not accepted (blob transactions, type 3)."""

    def __init__(self) -> None:
        super().__init__("transaction type not supported")


class NotReplayProtectedError(TxPoolError):
    """A legacy transaction signed without a chain id (v = 27/28)."""

    def __init__(self) -> None:
        super().__init__("only replay-protected (EIP-155) transactions allowed over RPC")


class InvalidSenderError(TxPoolError):
    """The signature does not yield a sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid sender: {reason}")
        self.reason = reason


class InvalidChainIdError(InvalidSenderError):
    """The transaction was signed for another chain."""

    def __init__(self) -> None:
        super().__init__("invalid chain id for signer")


class GasLimitExceededError(TxPoolError):
    """The transaction's gas limit is above the block gas limit."""

    def __init__(self) -> None:
        super().__init__("exceeds block gas limit")


class FeeCapVeryHighError(TxPoolError):
    """maxFeePerGas (or gasPrice) does not fit in 256 bits."""

    def __init__(self) -> None:
        super().__init__("max fee per gas higher than 2^256-1")


class TipVeryHighError(TxPoolError):
    """maxPriorityFeePerGas does not fit in 256 bits."""

    def __init__(self) -> None:
        super().__init__("max priority fee per gas higher than 2^256-1")


class TipAboveFeeCapError(TxPoolError):
    """maxPriorityFeePerGas is above maxFeePerGas."""

    def __init__(self) -> None:
        super().__init__("max priority fee per gas higher than max fee per gas")


class NonceMaxError(TxPoolError):
    """The nonce is 2^64-1, which EIP-2681 forbids."""

    def __init__(self) -> None:
        super().__init__("nonce has max value")


class MaxInitCodeSizeExceededError(TxPoolError):
    """A contract creation carries more init code than EIP-3860 allows."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"max initcode size exceeded: code size {size}, limit {limit}")
        self.size = size
        self.limit = limit


class IntrinsicGasTooLowError(TxPoolError):
    """The gas limit does not cover the transaction's intrinsic cost."""

    def __init__(self, gas: int, needed: int, *, text: str = "intrinsic gas too low") -> None:
        super().__init__(f"{text}: gas {gas}, minimum needed {needed}")
        self.gas = gas
        self.needed = needed


class FloorDataGasTooLowError(IntrinsicGasTooLowError):
    """The gas limit does not cover the EIP-7623 calldata floor."""

    def __init__(self, gas: int, needed: int) -> None:
        super().__init__(gas, needed, text="insufficient gas for floor data gas cost")


class UnderpricedError(TxPoolError):
    """The priority fee is below the pool's configured minimum."""

    def __init__(self, needed: int, permitted: int) -> None:
        super().__init__(f"transaction underpriced: tip needed {needed}, tip permitted {permitted}")
        self.needed = needed
        self.permitted = permitted


class SetCodeTxCreateError(TxPoolError):
    """An EIP-7702 transaction has no recipient."""

    def __init__(self) -> None:
        super().__init__("EIP-7702 transaction cannot be used to create contract")


class EmptyAuthListError(TxPoolError):
    """An EIP-7702 transaction has no authorizations."""

    def __init__(self) -> None:
        super().__init__("EIP-7702 transaction with empty auth list")


class AlreadyKnownError(TxPoolError):
    """A transaction with this hash is already in the pool."""

    def __init__(self) -> None:
        super().__init__("already known")


class NonceTooLowError(TxPoolError):
    """The nonce was already used by the sender's account."""

    def __init__(self, address: bytes, tx_nonce: int, state_nonce: int) -> None:
        super().__init__(
            f"nonce too low: address {_address(address)}, tx: {tx_nonce} state: {state_nonce}"
        )
        self.address = address
        self.tx_nonce = tx_nonce
        self.state_nonce = state_nonce


class NonceTooHighError(TxPoolError):
    """The nonce is further ahead of the account's nonce than the pool keeps."""

    def __init__(self, address: bytes, tx_nonce: int, state_nonce: int) -> None:
        super().__init__(
            f"nonce too high: address {_address(address)}, tx: {tx_nonce} state: {state_nonce}"
        )
        self.address = address
        self.tx_nonce = tx_nonce
        self.state_nonce = state_nonce


class InsufficientFundsError(TxPoolError):
    """The sender cannot pay gas * price + value (alone, or with its other pending txs)."""

    PREFIX = "insufficient funds for gas * price + value"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.PREFIX}: {detail}")

    @classmethod
    def for_tx(cls, address: bytes, have: int, want: int) -> InsufficientFundsError:
        """The transaction alone costs more than the balance."""
        return cls(f"address {_address(address)} have {have} want {want}")

    @classmethod
    def overdraft(
        cls, balance: int, queued_cost: int, tx_cost: int, overshot: int
    ) -> InsufficientFundsError:
        """The transaction plus the sender's pending transactions cost more than the balance."""
        return cls(
            f"balance {balance}, queued cost {queued_cost}, tx cost {tx_cost}, overshot {overshot}"
        )


class ReplacementUnderpricedError(TxPoolError):
    """A same-nonce replacement does not raise both fee caps by the required bump."""

    def __init__(self) -> None:
        super().__init__("replacement transaction underpriced")


class AccountLimitExceededError(TxPoolError):
    """The sender already has as many transactions pooled as one account may."""

    def __init__(self, pooled: int) -> None:
        super().__init__(f"account limit exceeded: pooled {pooled} txs")
        self.pooled = pooled


class TxPoolOverflowError(TxPoolError):
    """The pool is full and the transaction does not pay more than what it would evict."""

    def __init__(self) -> None:
        super().__init__("txpool is full")
