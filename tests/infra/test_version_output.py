"""The stack says which release it runs: a ``Version`` output and every function's environment."""

from __future__ import annotations

import pytest

from shared.version import VERSION, VERSION_ENV, VERSION_OUTPUT, deployed_version
from tests.infra.conftest import Synthesised

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def test_given_the_stack_when_synthesised_then_its_version_output_and_function_environments_name_the_release(
    synth: Synthesised,
) -> None:
    outputs = synth.raw["Outputs"]
    functions = synth.resources("AWS::Lambda::Function")

    # The output the CLI reads through CloudFormation's describe_stacks
    assert outputs[VERSION_OUTPUT]["Value"] == VERSION
    # and the variable every function of this product carries (the sandbox reads it from there).
    ours = {
        name: props["Properties"]["Environment"]["Variables"]
        for name, props in functions.items()
        if "INTEGRATION_CONFIG" in props["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert len(ours) >= 4
    assert {env[VERSION_ENV] for env in ours.values()} == {VERSION}
    assert deployed_version(next(iter(ours.values())), {VERSION_OUTPUT: VERSION}) == VERSION
