// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @notice Test only: a vesting beneficiary that tries to release again while being paid.
interface IReleasable {
    function release() external returns (uint256);
}

contract ReentrantBeneficiary {
    uint256 public received;
    uint256 public payments;
    uint256 public reentryAttempts;
    uint256 public reentrySucceeded;
    bytes public lastRevert;

    receive() external payable {
        received += msg.value;
        payments += 1;
        if (reentryAttempts == 0) {
            reentryAttempts += 1;
            try IReleasable(msg.sender).release() returns (uint256) {
                reentrySucceeded += 1;
            } catch (bytes memory reason) {
                lastRevert = reason;
            }
        }
    }
}
