"""A secret a command prints, logs and fails with: shown live, never stored."""

from __future__ import annotations

import json

import pytest

from tests.processes import TABLE

pytestmark = pytest.mark.processes

SECRET = "s3cr3t"
KEY = "sk_live_" + "0123456789abcdefghijKLMN"


def stored_row(project):
    """Every column of the one row of ``leaky``, whatever columns the table has."""
    [row] = project.sql(f"SELECT * FROM {TABLE} WHERE command_name = ?", ("leaky",))
    return [str(value) for value in row]


def test_a_secret_option_is_shown_live_and_stored_nowhere(project):
    result = project.run("leaky", f"--api-token={SECRET}", env={"MC_TEST_CAPTURE_LOGS": "WARNING"})
    assert result.returncode == 1
    assert f"stdout: token={SECRET} key={KEY}\nprint: token={SECRET}\n" == result.stdout
    assert f"stderr: token={SECRET}\nprint: token={SECRET}\n" in result.stderr
    assert result.stderr.endswith(f"ValueError: the API refused token {SECRET}\n")
    assert not any(SECRET in value for value in stored_row(project))
    [row] = project.rows("leaky")
    assert row["output"] == f"stdout: token=******** key={KEY}\nprint: token=********\n"
    assert row["stderr"] == (
        "stderr: token=********\nprint: token=********\n"
        "WARNING testapp.leaky: logged: token=********\n"
    )
    assert row["error_message"] == "ValueError: the API refused token ********"
    assert 'raise ValueError(f"the API refused token {api_token}")' in row["traceback"]
    assert row["traceback"].endswith("ValueError: the API refused token ********\n")
    parameters = row["parameters"]  # JSON text, but a dict from PostgreSQL's jsonb
    options = (json.loads(parameters) if isinstance(parameters, str) else parameters)["options"]
    assert options["api_token"] == "********"


def test_a_redact_pattern_masks_a_printed_key(project):
    result = project.run(
        "leaky", f"--api-token={SECRET}", env={"MC_TEST_REDACT": "sk_live_[0-9a-zA-Z]{24}\nnone"}
    )
    assert result.returncode == 1 and KEY in result.stdout
    assert not any(KEY in value for value in stored_row(project))
    [row] = project.rows("leaky")
    assert row["output"] == "stdout: token=******** key=********\nprint: token=********\n"
