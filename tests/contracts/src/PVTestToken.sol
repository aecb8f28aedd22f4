// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title PV Test Token
/// @notice Plain OpenZeppelin ERC-20 for client tests; the whole supply goes to the deployer.
contract PVTestToken is ERC20 {
    constructor(uint256 initialSupply) ERC20("PV Test Token", "PVT") {
        _mint(msg.sender, initialSupply);
    }
}
