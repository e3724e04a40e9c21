"""The vault file: format, permissions, atomic writes and the errors a user can cause."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.security.secret import Secret
from stairways.security.vault import (
    KdfParams,
    SecretNotFoundError,
    Vault,
    VaultCorruptError,
    VaultError,
    VaultNotFoundError,
    VaultPermissionError,
    WrongPassphraseError,
    generate_secret_value,
)
from tests.unit.security.helpers import CHEAP, PASSPHRASE, make_vault

KEY = "polygon-key-0123456789abcdef"


def test_kdf_defaults_are_rfc9106_argon2id_and_recorded_in_the_file(tmp_path: Path) -> None:
    assert KdfParams() == KdfParams(time_cost=3, memory_cost_kib=65536, parallelism=4)
    path = tmp_path / "vault"
    Vault.create(path, Secret(PASSPHRASE))
    doc = json.loads(path.read_text())
    assert doc["format"] == "stairways-vault"
    assert doc["kdf"] == {
        "name": "argon2id",
        "time_cost": 3,
        "memory_cost_kib": 65536,
        "parallelism": 4,
        "salt": doc["kdf"]["salt"],
    }


def test_round_trip_and_values_are_not_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"polygon_api_key": KEY, "journal_mac_key": "m" * 43})
    vault = Vault.open(path, Secret(PASSPHRASE))
    assert vault.names() == ["journal_mac_key", "polygon_api_key"]
    assert vault.get("polygon_api_key").reveal() == KEY
    assert KEY.encode() not in path.read_bytes()
    assert PASSPHRASE.encode() not in path.read_bytes()


def test_vault_is_created_0600_whatever_the_umask_and_never_over_an_existing_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sub" / "vault"
    old = os.umask(0)
    try:
        vault = make_vault(path, {"a_secret": KEY})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    vault.set("b_secret", KEY + "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(VaultError, match="already exists"):
        Vault.create(path, Secret(PASSPHRASE), kdf=CHEAP)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_vault_readable_by_group_or_others_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"a_secret": KEY})
    path.chmod(mode)
    with pytest.raises(VaultPermissionError) as info:
        Vault.open(path, Secret(PASSPHRASE), reading="a_secret")
    message = str(info.value)
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message
    assert "'a_secret'" in message
    assert info.value.exit_code == 2


def test_wrong_passphrase_names_the_file_and_secret_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"a_secret": KEY})
    before = path.read_bytes()
    with pytest.raises(WrongPassphraseError) as info:
        Vault.open(path, Secret("not-the-passphrase"), reading="a_secret")
    assert str(path) in str(info.value)
    assert "'a_secret'" in str(info.value)
    assert info.value.exit_code == 2
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[: len(b) // 2], "not a complete vault document"),
        (lambda b: b[:0], "not a complete vault document"),
        (lambda b: b"\x00\xff" + b, "not a complete vault document"),
        (lambda b: b.replace(b'"version": 1', b'"version": 9'), "unknown version"),
        (lambda b: b.replace(b'"argon2id"', b'"md5"'), "not argon2id"),
        (lambda b: b.replace(b'"time_cost": 1', b'"time_cost": 99999'), "key-derivation"),
    ],
)
def test_damaged_file_is_a_corrupt_vault_error_naming_the_file(
    tmp_path: Path, damage: object, why: str
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"a_secret": KEY})
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    before = path.read_bytes()
    with pytest.raises(VaultCorruptError, match=why) as info:
        Vault.open(path, Secret(PASSPHRASE))
    assert str(path) in str(info.value)
    assert info.value.exit_code == 1
    assert path.read_bytes() == before


def test_flipped_byte_in_the_ciphertext_is_corruption_not_a_wrong_passphrase(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"a_secret": KEY})
    doc = json.loads(path.read_text())
    token = doc["token"]
    middle = len(token) // 2
    doc["token"] = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    path.write_text(json.dumps(doc))
    with pytest.raises(VaultCorruptError, match="integrity check"):
        Vault.open(path, Secret(PASSPHRASE))


def test_missing_vault_and_missing_secret_name_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(VaultNotFoundError, match="stairways secrets set"):
        Vault.open(tmp_path / "nope", Secret(PASSPHRASE))
    vault = make_vault(tmp_path / "vault", {"a_secret": KEY})
    with pytest.raises(SecretNotFoundError) as info:
        vault.get("other")
    assert "'other'" in str(info.value)
    assert str(tmp_path / "vault") in str(info.value)
    with pytest.raises(SecretNotFoundError):
        vault.remove("other")


def test_short_value_and_bad_name_are_refused_without_changing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    vault = make_vault(path, {"a_secret": KEY})
    before = path.read_bytes()
    with pytest.raises(InputError, match="too short"):
        vault.set("b_secret", "1234567")
    with pytest.raises(InputError, match="invalid secret name"):
        vault.set("bad name", KEY)
    with pytest.raises(InputError, match="invalid secret name"):
        vault.set("../escape", KEY)
    assert path.read_bytes() == before
    assert vault.names() == ["a_secret"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_vault_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "vault"
    vault = make_vault(path, {"a_secret": KEY})
    before = path.read_bytes()

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
    else:
        monkeypatch.setattr(Path, "replace", fail)
    with pytest.raises(VaultError, match="nothing was changed"):
        vault.set("b_secret", KEY + "b")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert vault.names() == ["a_secret"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vault.lock", "vault"]
    assert Vault.open(path, Secret(PASSPHRASE)).names() == ["a_secret"]


def test_two_openers_writing_in_turn_lose_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    first = make_vault(path)
    second = Vault.open(path, Secret(PASSPHRASE))
    first.set("from_first", KEY + "1")
    second.set("from_second", KEY + "2")
    first.remove("from_second")
    assert Vault.open(path, Secret(PASSPHRASE)).names() == ["from_first"]


def test_generated_values_are_long_random_and_distinct() -> None:
    values = {generate_secret_value() for _ in range(20)}
    assert len(values) == 20
    assert all(len(v) == 43 for v in values)


_names = st.sampled_from(["polygon_api_key", "journal_mac_key", "ib.user", "approver_key.ana"])
_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=40
)
_ops = st.lists(st.tuples(st.booleans(), _names, _values), max_size=8)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_any_sequence_of_sets_and_removes_reopens_to_the_same_contents(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[bool, str, str]]
) -> None:
    path = tmp_path_factory.mktemp("vault") / "vault"
    vault = make_vault(path)
    model: dict[str, str] = {}
    for is_set, name, value in ops:
        if is_set:
            vault.set(name, value)
            model[name] = value
        elif name in model:
            vault.remove(name)
            del model[name]
        else:
            with pytest.raises(SecretNotFoundError):
                vault.remove(name)
    reopened = Vault.open(path, Secret(PASSPHRASE))
    assert {n: reopened.get(n).reveal() for n in reopened.names()} == model
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
