"""A SCIM 2.0 directory as a connection kind: pushed to deskbridge with a bearer token of its own."""

from __future__ import annotations

from connectors.kind import Capability, Kind, KindCredentials, KindSettings

KIND = Kind(
    name="scim",
    title="SCIM",
    settings=KindSettings,
    credentials=KindCredentials,
    credential_sets=(frozenset(),),
    capabilities=frozenset({Capability.DIRECTORY_PUSHED}),
)
