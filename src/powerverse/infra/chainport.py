"""What the agent needs of the chain, and its implementation over the market SDK.

:class:`ChainPort` is the agent's whole view of the chain (rentals, task orders, the renter's
SSH keys, and the transactions it sends); :class:`MarketChain` implements it with
``powerverse.market``. The agent's own key (set as the resource's ``agent`` on the ResourceNFT)
confirms, declines, heartbeats and submits results; the provider's key, when the agent holds
it, takes tasks (only the resource's owner may).
"""

from __future__ import annotations

import base64
from typing import Protocol

from powerverse.market.client import ChainClient
from powerverse.market.did import DidRegistry, format_did
from powerverse.market.orders import Order, Orders
from powerverse.market.rentals import MarketConfig, Rental, Rentals

__all__ = ["SSH_KEY_TYPES", "ChainPort", "MarketChain"]

SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com")


class ChainPort(Protocol):
    """The agent's view of the chain."""

    def now(self) -> int:
        """The head block's timestamp (chain time)."""
        ...

    def market_config(self) -> MarketConfig:
        """Confirm window and heartbeat interval and grace."""
        ...

    def rental_count(self) -> int:
        """Rentals so far (ids are 1..count)."""
        ...

    def rental(self, rental_id: int) -> Rental:
        """One rental."""
        ...

    def confirm(self, rental_id: int) -> None:
        """Confirm the start of a rental (provider or agent)."""
        ...

    def decline(self, rental_id: int) -> None:
        """Decline a pending rental: the consumer is refunded in full."""
        ...

    def settle(self, rental_id: int) -> None:
        """Settle an expired rental (anyone)."""
        ...

    def heartbeat(self, rental_id: int) -> None:
        """Report that the rental's VM is up."""
        ...

    def ssh_keys(self, account: str) -> list[str]:
        """OpenSSH public key lines in the account's DID document."""
        ...

    def order_count(self) -> int:
        """Orders so far (ids are 1..count)."""
        ...

    def order(self, order_id: int) -> Order:
        """One demand or task order."""
        ...

    def take_task(self, order_id: int, token_id: int) -> None:
        """Take a task with one of the provider's resources (needs the provider's key)."""
        ...

    def submit_result(self, order_id: int, result_cid: str, result_hash: bytes) -> None:
        """Submit a task's result."""
        ...


class MarketChain:
    """:class:`ChainPort` over the market SDK."""

    def __init__(self, agent: ChainClient, provider: ChainClient | None = None) -> None:
        self.agent = agent
        self.provider = provider
        self._rentals = Rentals(agent)
        self._orders = Orders(agent)
        self._did = DidRegistry(agent)

    def now(self) -> int:
        return int(self.agent.w3.eth.get_block("latest")["timestamp"])

    def market_config(self) -> MarketConfig:
        return self._rentals.config()

    def rental_count(self) -> int:
        return self._rentals.rental_count()

    def rental(self, rental_id: int) -> Rental:
        return self._rentals.rental(rental_id)

    def confirm(self, rental_id: int) -> None:
        self._rentals.confirm(rental_id)

    def decline(self, rental_id: int) -> None:
        self._rentals.decline(rental_id)

    def settle(self, rental_id: int) -> None:
        self._rentals.settle(rental_id)

    def heartbeat(self, rental_id: int) -> None:
        self._rentals.heartbeat(rental_id)

    def ssh_keys(self, account: str) -> list[str]:
        keys = self._did.keys(format_did(account))
        return [
            f"{k.key_type} {base64.b64encode(k.public_key).decode()}"
            for k in keys
            if k.key_type in SSH_KEY_TYPES
        ]

    def order_count(self) -> int:
        return self._orders.order_count()

    def order(self, order_id: int) -> Order:
        return self._orders.order(order_id)

    def take_task(self, order_id: int, token_id: int) -> None:
        if self.provider is None:
            raise PermissionError("taking tasks needs the provider's key (--provider-keystore)")
        Orders(self.provider).take_task(order_id, token_id)

    def submit_result(self, order_id: int, result_cid: str, result_hash: bytes) -> None:
        self._orders.submit_result(order_id, result_cid, result_hash)
