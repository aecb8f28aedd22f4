"""PowerVerse Infra: the provider agent that turns a machine into verified, rentable VMs.

Layers inside the package (imports point down):

- ``hardware``, ``benchmark``, ``scoring``, ``attestation``: what the machine is and proves;
- ``drivers/``: VMs (``qemu``) and sandboxed tasks (``sandbox``) behind small interfaces
  (``drivers.base``), modelled on OpenStack Nova's ComputeDriver;
- ``objects``, ``images``, ``volumes``, ``metering``: the per-host services;
- ``auth``, ``credentials``, ``api``: the signed REST API lessees use;
- ``state``, ``agent``, ``orchestration``: the daemon that follows the chain.
"""
