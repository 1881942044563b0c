"""Technician overrides over MQTT, signed with a technician's Ed25519 key (issue 16).

- `keys`: key files (`hearth keys new NAME`), public-key text, fingerprints, the private file's permissions.
- `signing`: the canonical bytes a request is signed over, signing and checking a signature.
- `gate`: what a site trusts (the layout's technician keys) and the checks a request passes before it counts:
  signature, site, expiry, a new id (kept in the store across restarts).
- `handler`: the controller's side: a request from `hearth/v1/<site>/override` through the gate, then carried out
  exactly like one from the local socket (`controller.links.override_ops`), answered on `override/reply`.
"""
