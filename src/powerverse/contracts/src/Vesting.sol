// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title An installment vesting wallet holding native PVC for one beneficiary.
/// @notice The tokenomics allocations (docs/tokenomics.md) unlock in installments: an amount at
/// each of a fixed list of times. The list is fixed at construction (times strictly increasing,
/// every amount positive) and the contract must be funded with exactly their sum. Anyone may
/// call `release()`: it pays the beneficiary every installment whose time has come and that was
/// not paid yet. OpenZeppelin's VestingWallet vests linearly, which these schedules are not.
///
/// Invariant: `address(this).balance >= total - released()` (more only if someone forces coin
/// in without a call); nothing is ever paid twice because paid installments form a prefix of
/// the list (`releasedCount`) and only move forward.
contract Vesting is ReentrancyGuard {
    using SafeCast for uint256;

    /// @notice One unlock: `amount` wei from unix time `time` on.
    struct Installment {
        uint64 time;
        uint192 amount;
    }

    /// @notice Who receives every release; fixed for ever.
    address public immutable beneficiary;
    /// @notice The sum of all installments (the contract's funding).
    uint256 public immutable total;

    Installment[] private _installments;
    /// @notice How many installments (a prefix of the list) have been paid.
    uint256 public releasedCount;
    uint256 private _released;

    event VestingCreated(address indexed beneficiary, uint256 installments, uint256 total);
    event Released(
        address indexed beneficiary, address indexed caller, uint256 amount, uint256 releasedCount
    );

    error ZeroAddress();
    error NoInstallments();
    error LengthMismatch(uint256 times, uint256 amounts);
    error TimesNotIncreasing(uint256 index, uint64 previous, uint64 time);
    error ZeroInstallment(uint256 index);
    error FundingMismatch(uint256 expected, uint256 received);
    error NothingDue(uint64 nextTime);
    error FullyReleased();
    error InstallmentIndexOutOfRange(uint256 index, uint256 count);

    /// @param beneficiary_ Receives every release.
    /// @param times Unlock times (unix seconds), strictly increasing.
    /// @param amounts Wei unlocked at each time, all positive; `msg.value` must equal their sum.
    constructor(address beneficiary_, uint64[] memory times, uint256[] memory amounts) payable {
        if (beneficiary_ == address(0)) revert ZeroAddress();
        if (times.length == 0) revert NoInstallments();
        if (times.length != amounts.length) revert LengthMismatch(times.length, amounts.length);
        uint256 sum;
        for (uint256 i = 0; i < times.length; ++i) {
            if (i > 0 && times[i] <= times[i - 1]) {
                revert TimesNotIncreasing(i, times[i - 1], times[i]);
            }
            if (amounts[i] == 0) revert ZeroInstallment(i);
            sum += amounts[i];
            _installments.push(Installment(times[i], amounts[i].toUint192()));
        }
        if (msg.value != sum) revert FundingMismatch(sum, msg.value);
        beneficiary = beneficiary_;
        total = sum;
        emit VestingCreated(beneficiary_, times.length, sum);
    }

    /// @notice Pay the beneficiary every installment that is due and unpaid. Anyone may call it.
    /// @return amount Wei paid.
    function release() external nonReentrant returns (uint256 amount) {
        uint256 count = _installments.length;
        uint256 i = releasedCount;
        while (i < count && _installments[i].time <= block.timestamp) {
            amount += _installments[i].amount;
            ++i;
        }
        if (amount == 0) {
            if (i == count) revert FullyReleased();
            revert NothingDue(_installments[i].time);
        }
        releasedCount = i;
        _released += amount;
        emit Released(beneficiary, msg.sender, amount, i);
        Address.sendValue(payable(beneficiary), amount);
    }

    /// @notice Wei `release()` would pay now.
    function releasable() external view returns (uint256) {
        return vestedAmount(uint64(block.timestamp)) - _released;
    }

    /// @notice Wei paid to the beneficiary so far.
    function released() external view returns (uint256) {
        return _released;
    }

    /// @notice Wei unlocked (paid or not) at `timestamp`: the installments due by then.
    function vestedAmount(uint64 timestamp) public view returns (uint256 amount) {
        uint256 count = _installments.length;
        for (uint256 i = 0; i < count && _installments[i].time <= timestamp; ++i) {
            amount += _installments[i].amount;
        }
    }

    /// @notice The number of installments.
    function installmentCount() external view returns (uint256) {
        return _installments.length;
    }

    /// @notice Installment `index` (time, wei).
    function installmentAt(uint256 index) external view returns (uint64 time, uint256 amount) {
        if (index >= _installments.length) {
            revert InstallmentIndexOutOfRange(index, _installments.length);
        }
        Installment storage item = _installments[index];
        return (item.time, item.amount);
    }

    /// @notice Every installment: times and amounts, in order.
    function installments() external view returns (uint64[] memory times, uint256[] memory amounts) {
        uint256 count = _installments.length;
        times = new uint64[](count);
        amounts = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            times[i] = _installments[i].time;
            amounts[i] = _installments[i].amount;
        }
    }

    /// @notice The first unpaid installment (time, wei); (0, 0) once everything is paid.
    function nextInstallment() external view returns (uint64 time, uint256 amount) {
        if (releasedCount == _installments.length) return (0, 0);
        Installment storage item = _installments[releasedCount];
        return (item.time, item.amount);
    }
}
