"""A CSV export as a connection kind: each import is the whole directory."""

from __future__ import annotations

from connectors.kind import Capability, Kind, KindCredentials, KindSettings

KIND = Kind(
    name="csv",
    title="CSV",
    settings=KindSettings,
    credentials=KindCredentials,
    credential_sets=(frozenset(),),
    capabilities=frozenset({Capability.DIRECTORY_PUSHED, Capability.TAKES_FILES}),
    default_settings={"team_groups": ["*"]},  # a file's teams column is meant to make teams
)
