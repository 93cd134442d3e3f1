"""Django's test runner, each test's outcome also written to the report file."""

from __future__ import annotations

import unittest

from django.test.runner import DiscoverRunner

from tests.django_suite import hook


class OutcomeRecorder(unittest.TextTestResult):
    """Each test's outcome, written to the report file as well."""

    def _record(self, test: unittest.TestCase, outcome: str, **details: str) -> None:
        hook.report(event="test", outcome=outcome, id=test.id(), **details)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason=reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "failed" if failed else "error")


class Runner(DiscoverRunner):
    def get_resultclass(self):
        # --debug-sql and --pdb have result classes of their own: keep them.
        return super().get_resultclass() or OutcomeRecorder
