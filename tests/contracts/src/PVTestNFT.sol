// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title PV Test NFT
/// @notice OpenZeppelin ERC-721 for client tests; only the deployer (owner) can mint.
contract PVTestNFT is ERC721, Ownable {
    constructor() ERC721("PV Test NFT", "PVNFT") Ownable(msg.sender) {}

    /// @notice Mints token `id` to `to`; reverts with OwnableUnauthorizedAccount for non-owners.
    function mint(address to, uint256 id) external onlyOwner {
        _safeMint(to, id);
    }
}
