// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title The PowerVerse DAO's timelock and treasury.
/// @notice Runs what the DAO's Governor (its only proposer and canceller) passed, `minDelay`
/// seconds after it was queued; anyone may execute a ready operation. It holds the governance
/// roles of the market contracts from genesis on, and its balance is the DAO treasury (spam
/// deposits, project refunds, donations via `receive`).
///
/// Genesis hand-over: the market contracts' constructors make this address their only admin,
/// so the constructor here applies the genesis role table — the foundation's operational roles
/// (verifier, platform admin, arbiter) granted, this contract's copies of them revoked — before
/// anything else can run. After genesis only the DAO changes roles.
contract DaoTimelock is TimelockController {
    /// @notice One genesis role change on a system contract: grant (or revoke) `role`.
    struct RoleChange {
        address target;
        bytes32 role;
        address account;
        bool revoke;
    }

    event Donated(address indexed from, uint256 amount);
    event GenesisRoleChange(address indexed target, bytes32 indexed role, address indexed account, bool revoke);

    constructor(uint256 minDelay, address governor, RoleChange[] memory genesisRoles)
        TimelockController(minDelay, _one(governor), _one(address(0)), address(0))
    {
        for (uint256 i = 0; i < genesisRoles.length; ++i) {
            RoleChange memory c = genesisRoles[i];
            if (c.target.code.length == 0) continue; // a genesis without that contract
            if (c.revoke) {
                IAccessControl(c.target).revokeRole(c.role, c.account);
            } else {
                IAccessControl(c.target).grantRole(c.role, c.account);
            }
            emit GenesisRoleChange(c.target, c.role, c.account, c.revoke);
        }
    }

    /// @notice Give PVC to the DAO treasury (plain transfers are accepted too, without event).
    function donate() external payable {
        emit Donated(msg.sender, msg.value);
    }

    function _one(address a) private pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }
}
