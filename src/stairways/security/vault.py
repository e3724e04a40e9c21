"""The secrets vault: one file, encrypted with Fernet under a key derived from a passphrase.

The file is a small JSON document::

    {"format": "stairways-vault", "version": 1,
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_cost_kib": 65536, "parallelism": 4,
             "salt": "<base64>"},
     "check": "<hex>", "token": "<Fernet token of {\"secrets\": {name: value}}>"}

Argon2id turns the passphrase and salt into 64 bytes: the first 32 are the Fernet key (which
authenticates and encrypts), the last 32 key ``check``, an HMAC that tells a wrong passphrase
apart from a damaged file without revealing anything Fernet does not already protect.

The file is created with mode 0600 through ``O_CREAT | O_EXCL`` and refused when group or others
may read it. Every change is written to a new 0600 file in the same directory, fsynced and
renamed over the old one under an exclusive lock, so a failure at any point leaves the previous
vault intact. Values never appear in errors or logs (they are remembered for redaction as soon
as the vault is opened).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets as _random
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.security.names import check_name
from stairways.security.secret import MIN_REDACTED_LENGTH, Secret, remember

__all__ = [
    "MAX_VALUE_BYTES",
    "MIN_VALUE_LENGTH",
    "KdfParams",
    "SecretNotFoundError",
    "Vault",
    "VaultCorruptError",
    "VaultError",
    "VaultNotFoundError",
    "VaultPermissionError",
    "WrongPassphraseError",
    "generate_secret_value",
]

log = logging.getLogger(__name__)

FORMAT = "stairways-vault"
VERSION = 1
MIN_VALUE_LENGTH = MIN_REDACTED_LENGTH
MAX_VALUE_BYTES = 64 * 1024
_SALT_BYTES = 16
_CHECK_LABEL = b"stairways vault passphrase check"


class VaultError(StairwaysError):
    """The vault could not be read or written; nothing was changed."""


class VaultCorruptError(VaultError):
    """The vault file is damaged or truncated; restore it from a backup."""


class VaultNotFoundError(MissingResourceError):
    """The vault file does not exist yet."""


class SecretNotFoundError(MissingResourceError):
    """The vault holds no secret of that name."""


class WrongPassphraseError(InputError):
    """The passphrase does not open the vault."""


class VaultPermissionError(InputError):
    """The vault file may be read by other users, or is not a regular file."""


@dataclass(frozen=True, kw_only=True)
class KdfParams:
    """Argon2id cost parameters (RFC 9106's second recommendation by default).

    :param time_cost: passes over memory
    :param memory_cost_kib: memory used, in KiB
    :param parallelism: lanes
    """

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4

    def check(self) -> None:
        """Refuse costs outside the range a vault may use (also guards against damaged files)."""
        if not 1 <= self.time_cost <= 50:
            raise ValueError(f"time_cost {self.time_cost} is outside 1..50")
        if not 8 * self.parallelism <= self.memory_cost_kib <= 4 * 1024 * 1024:
            raise ValueError(f"memory_cost_kib {self.memory_cost_kib} is outside 8*lanes..4 GiB")
        if not 1 <= self.parallelism <= 64:
            raise ValueError(f"parallelism {self.parallelism} is outside 1..64")


@dataclass(frozen=True)
class _Keys:
    salt: bytes
    kdf: KdfParams
    fernet: bytes
    check: str


def _derive(passphrase: Secret, salt: bytes, kdf: KdfParams) -> _Keys:
    from argon2.low_level import Type, hash_secret_raw

    raw = hash_secret_raw(
        secret=passphrase.reveal().encode("utf-8"),
        salt=salt,
        time_cost=kdf.time_cost,
        memory_cost=kdf.memory_cost_kib,
        parallelism=kdf.parallelism,
        hash_len=64,
        type=Type.ID,
    )
    check = hmac.new(raw[32:], _CHECK_LABEL, hashlib.sha256).hexdigest()
    return _Keys(salt, kdf, base64.urlsafe_b64encode(raw[:32]), check)


def generate_secret_value() -> str:
    """A fresh random secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return _random.token_urlsafe(32)


def _check_mode(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VaultNotFoundError(
            f"vault file {path} does not exist: create it by storing a first secret with "
            "`stairways secrets set NAME`"
        ) from None
    except OSError as err:
        raise VaultError(f"cannot read vault file {path}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise VaultPermissionError(f"vault path {path} is not a regular file")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise VaultPermissionError(
            f"vault file {path} has mode {mode:04o}: group or others may access it. "
            f"Run: chmod 600 {path}"
        )


def _corrupt(path: Path, why: str) -> VaultCorruptError:
    return VaultCorruptError(
        f"vault file {path} is corrupted or truncated ({why}); nothing was changed. Restore it "
        "from a backup"
    )


def _parse_document(path: Path, data: bytes) -> tuple[bytes, KdfParams, str, bytes]:
    """(salt, kdf, check, token) of a vault document, or VaultCorruptError saying what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(path, "not a complete vault document") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _corrupt(path, f"not a {FORMAT} document")
    if doc.get("version") != VERSION:
        raise _corrupt(path, f"unknown version {doc.get('version')!r}, expected {VERSION}")
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id":
        raise _corrupt(path, "key derivation is not argon2id")
    try:
        params = KdfParams(
            time_cost=int(kdf["time_cost"]),
            memory_cost_kib=int(kdf["memory_cost_kib"]),
            parallelism=int(kdf["parallelism"]),
        )
        params.check()
        salt = base64.b64decode(kdf["salt"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise _corrupt(path, f"bad key-derivation parameters: {err}") from None
    if len(salt) != _SALT_BYTES:
        raise _corrupt(path, "bad salt length")
    check, token = doc.get("check"), doc.get("token")
    if not isinstance(check, str) or len(check) != 64 or not isinstance(token, str) or not token:
        raise _corrupt(path, "missing check or token")
    return salt, params, check, token.encode("ascii", errors="replace")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, which must not exist, created 0600 with O_CREAT|O_EXCL."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class Vault:
    """An opened vault. Build it with :meth:`open` or :meth:`create`.

    Reading returns :class:`Secret` objects; :meth:`set` and :meth:`remove` rewrite the file
    atomically under an exclusive lock, re-reading it first so concurrent writers lose nothing.
    """

    def __init__(self, path: Path, keys: _Keys, values: dict[str, str]) -> None:
        self.path = path
        self._keys = keys
        self._values = values

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, passphrase: Secret, *, reading: str | None = None) -> Vault:
        """Open an existing vault.

        :param path: the vault file
        :param passphrase: its passphrase
        :param reading: the secret the caller wants, named in any error
        """
        vault_path = Path(path)
        try:
            keys, values = cls._load(vault_path, passphrase, None)
        except StairwaysError as err:
            raise _naming(err, reading) from None
        return cls(vault_path, keys, values)

    @classmethod
    def create(cls, path: Path | str, passphrase: Secret, kdf: KdfParams | None = None) -> Vault:
        """Create an empty vault at ``path`` (which must not exist), mode 0600.

        :param kdf: Argon2id costs; the defaults unless a test needs a cheap vault
        """
        vault_path = Path(path)
        params = kdf or KdfParams()
        params.check()
        keys = _derive(passphrase, _random.token_bytes(_SALT_BYTES), params)
        vault = cls(vault_path, keys, {})
        directory = vault_path.parent
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
        data = vault._document()
        tmp = vault._temp_path()
        try:
            _write_new_file(tmp, data)
            # link() fails if the vault appeared meanwhile: an exclusive, atomic create.
            os.link(tmp, vault_path)
        except FileExistsError:
            raise VaultError(
                f"vault file {vault_path} already exists; open it instead of creating it"
            ) from None
        except OSError as err:
            raise VaultError(f"could not create vault file {vault_path}: {err.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(directory)
        log.info("created vault %s (mode 0600)", vault_path)
        return vault

    @classmethod
    def _load(
        cls, path: Path, passphrase: Secret | None, known: _Keys | None
    ) -> tuple[_Keys, dict[str, str]]:
        from cryptography.fernet import Fernet, InvalidToken

        _check_mode(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise VaultError(f"cannot read vault file {path}: {err.strerror}") from None
        salt, params, check, token = _parse_document(path, data)
        if known is not None and known.salt == salt and known.kdf == params:
            keys = known
        elif passphrase is not None:
            keys = _derive(passphrase, salt, params)
        else:
            raise VaultError(f"vault file {path} was replaced by another vault; open it again")
        if not hmac.compare_digest(keys.check, check):
            raise WrongPassphraseError(f"wrong passphrase for vault {path}; nothing was changed")
        try:
            plain = Fernet(keys.fernet).decrypt(token)
        except InvalidToken:
            raise _corrupt(path, "its encrypted content fails the integrity check") from None
        try:
            content = json.loads(plain.decode("utf-8"))
            values = content["secrets"]
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()
            ):
                raise TypeError("secrets is not a mapping of text to text")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise _corrupt(
                path, f"decrypted content is malformed: {err.__class__.__name__}"
            ) from None
        for value in values.values():
            remember(value)
        return keys, dict(values)

    # -- reading -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the stored secrets, sorted."""
        return sorted(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def get(self, name: str) -> Secret:
        """The secret ``name``; SecretNotFoundError (naming the vault) when it is absent."""
        check_name(name)
        if name not in self._values:
            raise SecretNotFoundError(
                f"no secret named {name!r} in vault {self.path}; store it with "
                f"`stairways secrets set {name}`"
            )
        return Secret(self._values[name])

    # -- writing -------------------------------------------------------------------------------

    def set(self, name: str, value: Secret | str) -> None:
        """Store (or replace) ``name``; the file is rewritten atomically."""
        check_name(name)
        text = value.reveal() if isinstance(value, Secret) else value
        if len(text) < MIN_VALUE_LENGTH:
            raise InputError(
                f"the value for secret {name!r} is too short ({len(text)} characters): secrets "
                f"of fewer than {MIN_VALUE_LENGTH} characters cannot be reliably kept out of "
                f"logs; vault {self.path} was not changed"
            )
        if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
            raise InputError(
                f"the value for secret {name!r} is longer than {MAX_VALUE_BYTES} bytes; vault "
                f"{self.path} was not changed"
            )
        remember(text)
        with self._locked():
            self._values[name] = text
            self._rewrite()

    def remove(self, name: str) -> None:
        """Delete ``name``; SecretNotFoundError when it is absent. The file is rewritten."""
        check_name(name)
        with self._locked():
            if name not in self._values:
                raise SecretNotFoundError(f"no secret named {name!r} in vault {self.path}")
            del self._values[name]
            self._rewrite()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the vault's lock file and reload the vault, so no concurrent change is lost."""
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise VaultError(f"cannot lock vault file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            previous = dict(self._values)
            self._keys, self._values = self._load(self.path, None, self._keys)
            try:
                yield
            except BaseException:
                self._values = previous
                raise
        finally:
            os.close(fd)

    def _temp_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.{_random.token_hex(4)}.tmp")

    def _document(self) -> bytes:
        from cryptography.fernet import Fernet

        plain = json.dumps({"secrets": self._values}, sort_keys=True).encode("utf-8")
        token = Fernet(self._keys.fernet).encrypt(plain).decode("ascii")
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {
                "name": "argon2id",
                "time_cost": self._keys.kdf.time_cost,
                "memory_cost_kib": self._keys.kdf.memory_cost_kib,
                "parallelism": self._keys.kdf.parallelism,
                "salt": base64.b64encode(self._keys.salt).decode("ascii"),
            },
            "check": self._keys.check,
            "token": token,
        }
        return (json.dumps(doc, indent=1) + "\n").encode("utf-8")

    def _rewrite(self) -> None:
        """Replace the file atomically: a new 0600 file, fsync, rename, fsync the directory."""
        data = self._document()
        tmp = self._temp_path()
        try:
            _write_new_file(tmp, data)
            tmp.replace(self.path)
        except OSError as err:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise VaultError(
                f"could not write vault file {self.path}: {err.strerror}; nothing was changed"
            ) from None
        _fsync_dir(self.path.parent)


def _naming(err: StairwaysError, reading: str | None) -> StairwaysError:
    """``err`` (same type) with the secret being read named in front of the message."""
    if reading is None:
        return err
    return type(err)(f"cannot read secret {reading!r}: {err}")
