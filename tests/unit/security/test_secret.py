"""The Secret type and redaction: values never show in reprs, logs or tracebacks."""

from __future__ import annotations

import io
import json
import logging
import pickle
import sys

import pytest

from stairways.security.secret import (
    MASK,
    MIN_REDACTED_LENGTH,
    RedactingFilter,
    Secret,
    contains_secret,
    install_redaction,
    redact,
)

VALUE = "sk-live-3f9a8b7c6d5e4f"


def test_secret_shows_as_mask_in_repr_str_format_and_containers() -> None:
    secret = Secret(VALUE)
    assert repr(secret) == MASK
    assert str(secret) == MASK
    assert f"{secret}" == MASK
    assert f"{secret:>20}" == MASK
    assert "%s %r" % (secret, secret) == f"{MASK} {MASK}"  # noqa: UP031
    assert VALUE not in repr([secret, {"k": secret}])
    assert secret.reveal() == VALUE


def test_secret_refuses_pickling_and_json() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(VALUE))
    with pytest.raises(TypeError):
        json.dumps({"k": Secret(VALUE)})


def test_secret_equality_compares_values_and_is_unhashable() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    with pytest.raises(TypeError):
        hash(Secret(VALUE))


def test_empty_or_non_text_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        Secret("")
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_redact_blanks_remembered_values_longest_first() -> None:
    inner = "inner-secret-value-01"
    outer = f"prefix-{inner}-suffix"
    Secret(inner)
    Secret(outer)
    assert redact(f"a {outer} b {inner} c") == f"a {MASK} b {MASK} c"
    assert contains_secret(f"x{inner}y")
    assert not contains_secret("nothing to see")


def test_values_shorter_than_the_minimum_are_not_remembered() -> None:
    short = "q" * (MIN_REDACTED_LENGTH - 1)
    Secret(short)
    assert redact(f"the {short} word") == f"the {short} word"


def _logger_with_filter() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"test.redaction.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_filter_redacts_messages_arguments_and_tracebacks() -> None:
    secret = Secret("tb-secret-0123456789")
    logger, stream = _logger_with_filter()
    logger.info("key is %s and raw %s", secret, secret.reveal())
    logger.info(f"inline {secret.reveal()}")
    try:
        raise RuntimeError(f"failed with {secret.reveal()}")
    except RuntimeError:
        logger.exception("request failed")
    logger.warning("stack", stack_info=True, extra={"x": 1})
    out = stream.getvalue()
    assert secret.reveal() not in out
    assert out.count(MASK) >= 4
    assert "RuntimeError: failed with ***" in out


def test_install_redaction_adds_one_filter_per_root_handler_and_a_redacting_excepthook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    install_redaction()
    install_redaction()
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    secret = Secret("hook-secret-abcdefgh")
    try:
        raise ValueError(f"bad value {secret.reveal()}")
    except ValueError as err:
        sys.excepthook(type(err), err, err.__traceback__)
    err_text = capsys.readouterr().err
    assert "ValueError: bad value ***" in err_text
    assert secret.reveal() not in err_text


def test_filter_passes_a_record_with_bad_format_arguments_to_the_handler() -> None:
    Secret("some-remembered-secret")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d apples", ("many",), None)
    assert RedactingFilter().filter(record) is True
    assert record.args == ("many",)
