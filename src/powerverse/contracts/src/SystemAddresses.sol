// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title Fixed addresses of the PowerVerse system contracts, predeployed in every genesis.
/// @notice Keep in step with `powerverse.contracts.system` and docs/contracts.md.
library SystemAddresses {
    address internal constant STAKING = 0x0000000000000000000000000000000000001000;
    address internal constant RESOURCE_NFT = 0x0000000000000000000000000000000000001001;
    address internal constant MARKET = 0x0000000000000000000000000000000000001002;
    address internal constant ORDERS = 0x0000000000000000000000000000000000001003;
    address internal constant REPUTATION = 0x0000000000000000000000000000000000001004;
    address internal constant ARBITRATION = 0x0000000000000000000000000000000000001005;
    address internal constant DID_REGISTRY = 0x0000000000000000000000000000000000001006;
    address internal constant PLATFORM_ADMIN = 0x0000000000000000000000000000000000001007;
    /// @dev Only in a genesis with a tokenomics section (docs/tokenomics.md).
    address internal constant DIVIDEND_POOL = 0x000000000000000000000000000000000000200A;
    // The DAO (docs/dao.md).
    address internal constant VOTES_PVC = 0x0000000000000000000000000000000000003000;
    address internal constant DAO_TIMELOCK = 0x0000000000000000000000000000000000003001;
    address internal constant DAO_GOVERNOR = 0x0000000000000000000000000000000000003002;
    address internal constant REVIEW_COMMITTEE = 0x0000000000000000000000000000000000003003;
    address internal constant DAO_PROPOSALS = 0x0000000000000000000000000000000000003004;
    address internal constant DAO_PROJECTS = 0x0000000000000000000000000000000000003005;
}
