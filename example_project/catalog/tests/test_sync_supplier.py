from managed_commands.testing.assertions import assert_failed, assert_history


def test_a_failure_is_recorded_with_its_output(run_managed_command):
    result = run_managed_command("sync_supplier", supplier_url="https://user:pw@supplier.test/")

    row = assert_failed(result, "CommandError: The supplier API is unreachable")
    assert result.exit_code == 1
    assert row.output == "Contacting the supplier...\n"
    # SENSITIVE_OPTIONS in settings: the URL with its password is not stored.
    assert row.parameters["options"]["supplier_url"] == "********"


def test_it_runs_again_after_a_failure(run_managed_command, command_history):
    command_history.failed("sync_supplier")

    run_managed_command("sync_supplier")

    assert_history("sync_supplier", ["failed", "failed"])
