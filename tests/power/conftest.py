"""Fixtures for the power tests: simulated BMCs (tests/sims) started once per module."""

from tests.sims.fixtures import ipmi_sim, labbmc, redfish  # noqa: F401  (fixtures)
