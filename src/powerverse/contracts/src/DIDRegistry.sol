// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title `did:pv` documents: controller, delegates, public keys, service endpoints, deactivation.
/// @notice Predeployed at `SystemAddresses.DID_REGISTRY`. The method is specified in
/// docs/did-method.md. An identity is a `bytes32` id:
/// - an account `did:pv:<address>`: `accountId(address)` = the address, left-padded;
/// - a resource `did:pv:<chainId>:<erc721>:<tokenId>`: `resourceId(erc721, tokenId)` =
///   keccak256(abi.encode(erc721, tokenId)), made known with `bindResource`.
/// An account's controller defaults to the account; a resource's to the token's current owner.
/// The current document is in storage (views below); every change also emits an event that names
/// the block of the identity's previous change (`previousChange`), so a resolver can walk its
/// whole history backwards from `changed(id)` (the ERC-1056 model).
contract DIDRegistry {
    uint256 public constant MAX_KEYS = 16;
    uint256 public constant MAX_SERVICES = 16;
    uint256 public constant MAX_DELEGATES = 16;
    uint256 public constant MAX_ID_LENGTH = 64;
    uint256 public constant MAX_TYPE_LENGTH = 64;
    uint256 public constant MAX_KEY_LENGTH = 1024;
    uint256 public constant MAX_ENDPOINT_LENGTH = 512;

    /// @notice Verification relationships of a key (bit flags, DID Core names).
    uint8 public constant AUTHENTICATION = 1;
    uint8 public constant ASSERTION_METHOD = 2;
    uint8 public constant KEY_AGREEMENT = 4;
    uint8 public constant CAPABILITY_INVOCATION = 8;
    uint8 public constant CAPABILITY_DELEGATION = 16;
    uint8 public constant ALL_PURPOSES = 31;

    struct PublicKey {
        string keyId; // fragment, unique within the document ("key-1" -> did#key-1)
        string keyType; // e.g. Ed25519VerificationKey2020, X25519KeyAgreementKey2019, ssh-ed25519
        bytes publicKey; // raw key bytes (ssh-*: the OpenSSH wire blob)
        uint8 purposes; // bit flags above
        uint64 validTo; // 0: no expiry
    }

    struct Service {
        string serviceId; // fragment, unique within the document
        string serviceType; // e.g. PowerVerseAgent, LinkedDomains
        string endpoint; // URI
    }

    struct Delegate {
        address delegate;
        bytes32 delegateType; // e.g. "sigAuth", "veriKey", "vmAccess" (right-padded ASCII)
        uint64 validTo;
    }

    struct Resource {
        address token; // ERC-721 contract
        uint256 tokenId;
    }

    struct Identity {
        address controller; // explicit controller; 0: the default
        address ownerAtSet; // resources: the token owner who set `controller`
        bool deactivated;
    }

    mapping(bytes32 id => Identity) private _identities;
    mapping(bytes32 id => Resource) private _resources;
    mapping(bytes32 id => PublicKey[]) private _keys;
    mapping(bytes32 id => Service[]) private _services;
    mapping(bytes32 id => Delegate[]) private _delegates;
    /// @notice Block number of the identity's latest change (0: never changed).
    mapping(bytes32 id => uint256 blockNumber) public changed;

    event ResourceBound(bytes32 indexed id, address indexed token, uint256 indexed tokenId);
    event ControllerChanged(bytes32 indexed id, address controller, uint256 previousChange);
    event KeyAdded(bytes32 indexed id, PublicKey key, uint256 previousChange);
    event KeyRemoved(bytes32 indexed id, string keyId, uint256 previousChange);
    event ServiceAdded(bytes32 indexed id, Service service, uint256 previousChange);
    event ServiceRemoved(bytes32 indexed id, string serviceId, uint256 previousChange);
    event DelegateAdded(
        bytes32 indexed id, bytes32 indexed delegateType, address indexed delegate, uint64 validTo, uint256 previousChange
    );
    event DelegateRevoked(bytes32 indexed id, bytes32 indexed delegateType, address indexed delegate, uint256 previousChange);
    event Deactivated(bytes32 indexed id, uint256 previousChange);

    error NotController(bytes32 id, address caller, address controller);
    error UnknownIdentity(bytes32 id);
    error IdentityDeactivated(bytes32 id);
    error ZeroAddress();
    error NotAContract(address token);
    error EmptyField(string field);
    error FieldTooLong(string field, uint256 length, uint256 maximum);
    error InvalidPurposes(uint8 purposes);
    error ExpiryInPast(uint64 validTo);
    error KeyExists(bytes32 id, string keyId);
    error KeyNotFound(bytes32 id, string keyId);
    error ServiceExists(bytes32 id, string serviceId);
    error ServiceNotFound(bytes32 id, string serviceId);
    error DelegateNotFound(bytes32 id, bytes32 delegateType, address delegate);
    error TooMany(string what, uint256 maximum);

    modifier onlyController(bytes32 id) {
        if (_identities[id].deactivated) revert IdentityDeactivated(id);
        address c = controllerOf(id);
        if (c == address(0)) revert UnknownIdentity(id);
        if (msg.sender != c) revert NotController(id, msg.sender, c);
        _;
    }

    // ------------------------------------------------------------------ identities

    /// @notice The id of the account DID `did:pv:<account>`.
    function accountId(address account) public pure returns (bytes32) {
        return bytes32(uint256(uint160(account)));
    }

    /// @notice The id of the resource DID `did:pv:<chainId>:<token>:<tokenId>`.
    function resourceId(address token, uint256 tokenId) public pure returns (bytes32) {
        return keccak256(abi.encode(token, tokenId));
    }

    /// @notice Make a resource DID known (anyone may; idempotent), so its owner can control it.
    function bindResource(address token, uint256 tokenId) external returns (bytes32 id) {
        if (token.code.length == 0) revert NotAContract(token);
        id = resourceId(token, tokenId);
        if (_resources[id].token == address(0)) {
            _resources[id] = Resource(token, tokenId);
            emit ResourceBound(id, token, tokenId);
        }
    }

    /// @notice The resource an id names (token 0 when it names none).
    function resourceOf(bytes32 id) external view returns (Resource memory) {
        return _resources[id];
    }

    /// @notice Who may change the document: the explicit controller, else the account itself, else
    /// the resource token's current owner; 0 for an unknown or deactivated identity.
    function controllerOf(bytes32 id) public view returns (address) {
        Identity storage identity = _identities[id];
        if (identity.deactivated) return address(0);
        Resource storage r = _resources[id];
        if (r.token == address(0)) {
            if (identity.controller != address(0)) return identity.controller;
            if (uint256(id) >> 160 == 0) return address(uint160(uint256(id)));
            return address(0);
        }
        address owner = _ownerOf(r);
        // An explicit controller lapses when the token changes hands.
        if (identity.controller != address(0) && owner == identity.ownerAtSet) return identity.controller;
        return owner;
    }

    /// @notice Whether the identity was deactivated (for ever).
    function isDeactivated(bytes32 id) external view returns (bool) {
        return _identities[id].deactivated;
    }

    /// @notice Hand control of the document to `newController`.
    function changeController(bytes32 id, address newController) external onlyController(id) {
        if (newController == address(0)) revert ZeroAddress();
        Identity storage identity = _identities[id];
        identity.controller = newController;
        Resource storage r = _resources[id];
        if (r.token != address(0)) identity.ownerAtSet = _ownerOf(r);
        emit ControllerChanged(id, newController, _touch(id));
    }

    /// @notice Deactivate the DID for ever: no controller, no keys, no services, no delegates.
    function deactivate(bytes32 id) external onlyController(id) {
        _identities[id] = Identity(address(0), address(0), true);
        delete _keys[id];
        delete _services[id];
        delete _delegates[id];
        emit Deactivated(id, _touch(id));
    }

    // ------------------------------------------------------------------ keys

    /// @notice Add a public key (verification method) to the document.
    function addKey(bytes32 id, PublicKey calldata key) external onlyController(id) {
        _checkString("keyId", bytes(key.keyId), MAX_ID_LENGTH);
        _checkString("keyType", bytes(key.keyType), MAX_TYPE_LENGTH);
        _checkString("publicKey", key.publicKey, MAX_KEY_LENGTH);
        if (key.purposes == 0 || key.purposes > ALL_PURPOSES) revert InvalidPurposes(key.purposes);
        if (key.validTo != 0 && key.validTo <= block.timestamp) revert ExpiryInPast(key.validTo);
        PublicKey[] storage keys = _keys[id];
        if (_findKey(keys, key.keyId) < keys.length) revert KeyExists(id, key.keyId);
        if (keys.length >= MAX_KEYS) revert TooMany("keys", MAX_KEYS);
        keys.push(key);
        emit KeyAdded(id, key, _touch(id));
    }

    /// @notice Remove the key `keyId`.
    function removeKey(bytes32 id, string calldata keyId) external onlyController(id) {
        PublicKey[] storage keys = _keys[id];
        uint256 i = _findKey(keys, keyId);
        if (i == keys.length) revert KeyNotFound(id, keyId);
        keys[i] = keys[keys.length - 1];
        keys.pop();
        emit KeyRemoved(id, keyId, _touch(id));
    }

    /// @notice The document's keys (expired ones included; resolvers leave them out).
    function keysOf(bytes32 id) external view returns (PublicKey[] memory) {
        return _keys[id];
    }

    // ------------------------------------------------------------------ services

    /// @notice Add a service endpoint.
    function addService(bytes32 id, Service calldata service) external onlyController(id) {
        _checkString("serviceId", bytes(service.serviceId), MAX_ID_LENGTH);
        _checkString("serviceType", bytes(service.serviceType), MAX_TYPE_LENGTH);
        _checkString("endpoint", bytes(service.endpoint), MAX_ENDPOINT_LENGTH);
        Service[] storage services = _services[id];
        if (_findService(services, service.serviceId) < services.length) revert ServiceExists(id, service.serviceId);
        if (services.length >= MAX_SERVICES) revert TooMany("services", MAX_SERVICES);
        services.push(service);
        emit ServiceAdded(id, service, _touch(id));
    }

    /// @notice Remove the service `serviceId`.
    function removeService(bytes32 id, string calldata serviceId) external onlyController(id) {
        Service[] storage services = _services[id];
        uint256 i = _findService(services, serviceId);
        if (i == services.length) revert ServiceNotFound(id, serviceId);
        services[i] = services[services.length - 1];
        services.pop();
        emit ServiceRemoved(id, serviceId, _touch(id));
    }

    /// @notice The document's service endpoints.
    function servicesOf(bytes32 id) external view returns (Service[] memory) {
        return _services[id];
    }

    // ------------------------------------------------------------------ delegates

    /// @notice Let `delegate` act for the identity as `delegateType` until `validTo` (replaces an
    /// existing grant of the same type to the same delegate).
    function addDelegate(bytes32 id, bytes32 delegateType, address delegate, uint64 validTo)
        external
        onlyController(id)
    {
        if (delegate == address(0)) revert ZeroAddress();
        if (delegateType == bytes32(0)) revert EmptyField("delegateType");
        if (validTo <= block.timestamp) revert ExpiryInPast(validTo);
        Delegate[] storage delegates = _delegates[id];
        uint256 i = _findDelegate(delegates, delegateType, delegate);
        if (i < delegates.length) {
            delegates[i].validTo = validTo;
        } else {
            if (delegates.length >= MAX_DELEGATES) revert TooMany("delegates", MAX_DELEGATES);
            delegates.push(Delegate(delegate, delegateType, validTo));
        }
        emit DelegateAdded(id, delegateType, delegate, validTo, _touch(id));
    }

    /// @notice Revoke a delegate grant.
    function revokeDelegate(bytes32 id, bytes32 delegateType, address delegate) external onlyController(id) {
        Delegate[] storage delegates = _delegates[id];
        uint256 i = _findDelegate(delegates, delegateType, delegate);
        if (i == delegates.length) revert DelegateNotFound(id, delegateType, delegate);
        delegates[i] = delegates[delegates.length - 1];
        delegates.pop();
        emit DelegateRevoked(id, delegateType, delegate, _touch(id));
    }

    /// @notice The document's delegate grants (expired ones included).
    function delegatesOf(bytes32 id) external view returns (Delegate[] memory) {
        return _delegates[id];
    }

    /// @notice Whether `delegate` currently holds a `delegateType` grant for the identity.
    function validDelegate(bytes32 id, bytes32 delegateType, address delegate) external view returns (bool) {
        Delegate[] storage delegates = _delegates[id];
        uint256 i = _findDelegate(delegates, delegateType, delegate);
        return i < delegates.length && delegates[i].validTo > block.timestamp;
    }

    // ------------------------------------------------------------------ internals

    function _touch(bytes32 id) private returns (uint256 previous) {
        previous = changed[id];
        changed[id] = block.number;
    }

    function _ownerOf(Resource storage r) private view returns (address) {
        try IERC721(r.token).ownerOf(r.tokenId) returns (address owner) {
            return owner;
        } catch {
            return address(0);
        }
    }

    function _checkString(string memory field, bytes memory value, uint256 maximum) private pure {
        if (value.length == 0) revert EmptyField(field);
        if (value.length > maximum) revert FieldTooLong(field, value.length, maximum);
    }

    function _findKey(PublicKey[] storage keys, string calldata keyId) private view returns (uint256 i) {
        bytes32 h = keccak256(bytes(keyId));
        for (; i < keys.length; ++i) {
            if (keccak256(bytes(keys[i].keyId)) == h) return i;
        }
    }

    function _findService(Service[] storage services, string calldata serviceId) private view returns (uint256 i) {
        bytes32 h = keccak256(bytes(serviceId));
        for (; i < services.length; ++i) {
            if (keccak256(bytes(services[i].serviceId)) == h) return i;
        }
    }

    function _findDelegate(Delegate[] storage delegates, bytes32 delegateType, address delegate)
        private
        view
        returns (uint256 i)
    {
        for (; i < delegates.length; ++i) {
            if (delegates[i].delegate == delegate && delegates[i].delegateType == delegateType) return i;
        }
    }
}
