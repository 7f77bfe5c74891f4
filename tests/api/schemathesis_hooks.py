"""Loaded by tests/api/schemathesis.sh (SCHEMATHESIS_HOOKS).

Works around a CPython 3.11 bug, not one of Entrada's: while drawing deeply
nested JSON (a ticket's free-form `entitlements` object), hypothesis describes
a lambda with `ast.parse`, which can raise "SystemError: AST constructor
recursion depth mismatch" deep in the stack. The description only names the
strategy in messages, so a plain name stands in when that happens.
"""

from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def _lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda"


lambda_sources.lambda_description = _lambda_description
