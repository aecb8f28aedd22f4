// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CustomErrors
/// @notice Every revert flavour a client must decode (custom errors with arguments, reason
/// strings, panics), plus a stored value whose history eth_call can read at past blocks.
contract CustomErrors {
    error InsufficientBalance(address account, uint256 have, uint256 want);
    error Unauthorized(address caller);
    error Empty();

    event ValueChanged(uint256 indexed oldValue, uint256 newValue, address indexed by);

    uint256 public value;
    mapping(address => uint256) public balanceOf;

    /// @notice Stores `newValue` and emits ValueChanged.
    function setValue(uint256 newValue) external {
        emit ValueChanged(value, newValue, msg.sender);
        value = newValue;
    }

    /// @notice Credits the caller with `amount` (so the balance check below has state to read).
    function deposit(uint256 amount) external {
        balanceOf[msg.sender] += amount;
    }

    /// @notice Debits `amount`; reverts InsufficientBalance(caller, have, want) if too little.
    function withdraw(uint256 amount) external {
        uint256 have = balanceOf[msg.sender];
        if (have < amount) revert InsufficientBalance(msg.sender, have, amount);
        balanceOf[msg.sender] = have - amount;
    }

    /// @notice Always reverts InsufficientBalance(caller, 0, want) (view, for eth_call tests).
    function requireBalance(uint256 want) external view returns (bool) {
        revert InsufficientBalance(msg.sender, balanceOf[msg.sender], want);
    }

    /// @notice Reverts Unauthorized(caller) unless the caller is `allowed`.
    function onlyFrom(address allowed) external view returns (bool) {
        if (msg.sender != allowed) revert Unauthorized(msg.sender);
        return true;
    }

    /// @notice Reverts the argument-less custom error Empty().
    function empty() external pure {
        revert Empty();
    }

    /// @notice Reverts with a reason string when `ok` is false (Error(string)).
    function requireOk(bool ok) external pure returns (bool) {
        require(ok, "CustomErrors: not ok");
        return true;
    }

    /// @notice Divides; `b == 0` panics with code 0x12 (division by zero).
    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    /// @notice Panics with code 0x01 (assert) when `ok` is false.
    function assertOk(bool ok) external pure returns (bool) {
        assert(ok);
        return true;
    }

    /// @notice Reverts without any data.
    function bareRevert() external pure {
        revert();
    }
}
