"""Per-node OS install options: sheet-cell validators, ``[install]`` defaults, and their merge.

Options a sheet may set (import columns with ``target="install"``, stored in the node's
``install_options``): root password (kept only as a SHA-512 crypt hash), SSH public key,
partition scheme, disk count, post-install script (the *name* of a site snippet, never code
from a cell) and post-install callback URL. Blank cells fall back to ``[install]``.

Every validator is an allow-list and raises :class:`ValueError` with a message that can stand
after ``FILE:ROW:COLUMN:``; none of them ever echoes a password.

SHA-512 crypt comes from *libpass* (``passlib.hash.sha512_crypt``): the maintained fork of
passlib, with its own pure-Python implementation where the stdlib ``crypt`` module is gone
(Python 3.13), so bmprov hashes the same way on every supported Python.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import ConfigError

SCHEMES: dict[str, int] = {
    "LVM_HBA": 1,  # plain disks behind an HBA, all of them physical volumes of one VG
    "LVM_RAID0": 2,  # md RAID 0 under LVM
    "LVM_RAID1": 2,  # md RAID 1 under LVM
    "LVM_RAID10": 4,  # md RAID 10 under LVM
    "LVM_RAID10S": 5,  # md RAID 10 on all but one disk, plus one hot spare
}
"""Partition schemes and the fewest disks each needs."""

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
MAX_DISKS = 64
CRYPT_ROUNDS = 5000  # glibc's default for $6$; hashes stay verifiable by every installer

_SHA512_CRYPT = re.compile(r"\$6\$(?:rounds=[0-9]{4,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,3}")
_KEY_COMMENT = re.compile(r"[A-Za-z0-9@._+:-]{1,100}")
_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/[A-Za-z0-9._~/-]*)?(?:\?(?P<query>[A-Za-z0-9._~=&-]*))?"
)
_DISK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_TZ = re.compile(r"[A-Za-z][A-Za-z0-9_+/-]{0,63}")


class PasswordHash(str):
    """A freshly made hash that still knows its plain text, so a re-import compares equal.

    ``stored != fresh`` is False when ``stored`` is a hash of the same password: re-importing a
    sheet with the same plain password changes nothing. Only the hash is ever shown or stored.
    """

    __slots__ = ("_plain", "_seen")

    _plain: str
    _seen: dict[str, bool]

    def __new__(cls, hashed: str, plain: str) -> PasswordHash:
        """Wrap ``hashed``; keep ``plain`` in memory only, for comparisons."""
        obj = super().__new__(cls, hashed)
        obj._plain = plain
        obj._seen = {}
        return obj

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and str.__eq__(self, other):
            return True
        if not isinstance(other, str) or not _SHA512_CRYPT.fullmatch(other):
            return False
        if other not in self._seen:
            from passlib.hash import sha512_crypt  # noqa: PLC0415

            self._seen[other] = bool(sha512_crypt.verify(self._plain, other))
        return self._seen[other]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __reduce__(self) -> Any:
        return (str, (str(self),))  # never pickle the plain text


def hash_password(plain: str, salt: str | None = None) -> str:
    """A SHA-512 crypt hash (``$6$…``) of a password that meets the policy (random salt)."""
    check_password_policy(plain)
    from passlib.hash import sha512_crypt  # noqa: PLC0415

    hasher = sha512_crypt.using(rounds=CRYPT_ROUNDS, **({"salt": salt} if salt else {}))
    return PasswordHash(hasher.hash(plain), plain)


def _stable_salt(plain: str) -> str:
    """A salt derived from the password: the env-var default must hash the same every run,
    or every node's install file would change on every ``pxe render``."""
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digest = hashlib.sha256(b"bmprov-root-password-salt\0" + plain.encode()).digest()
    return "".join(alphabet[b % 64] for b in digest[:16])


def check_password_policy(plain: str) -> None:
    """At least 8 characters, with a digit and a capital letter (never echoes the password)."""
    if _bad_edges(plain):
        raise ValueError("root password contains a control character or leading/trailing space")
    if len(plain) < 8 or not re.search(r"[0-9]", plain) or not re.search(r"[A-Z]", plain):
        raise ValueError(
            "root password does not meet the policy (at least 8 characters, "
            "with digits and capital letters)"
        )


def _bad_edges(plain: str) -> bool:
    return bool(re.search(r"[\x00-\x1f\x7f-\x9f]", plain)) or plain != plain.strip()


def root_password(value: str) -> str:
    """A root-password cell: a ``$6$`` hash kept as is, or a plain password hashed now."""
    text = value.strip() if value.strip().startswith("$") else value
    if text.startswith("$"):
        return password_hash(text)
    return hash_password(text)


def password_hash(value: str) -> str:
    """A SHA-512 crypt hash (``$6$[rounds=N$]salt$hash``); other schemes are refused."""
    validate.reject_control(value)
    text = value.strip()
    if not _SHA512_CRYPT.fullmatch(text):
        raise ValueError(
            "is not a SHA-512 crypt hash ($6$salt$…, e.g. from `openssl passwd -6`); "
            "MD5/SHA-256/yescrypt hashes are not accepted"
        )
    return text


def ssh_key(value: str) -> str:
    """One OpenSSH public key line: ``TYPE BASE64 [comment]`` with a known type."""
    validate.reject_control(value)
    parts = value.split()
    if len(parts) not in (2, 3) or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(
            "is not an OpenSSH public key (TYPE BASE64 [comment]; "
            f"TYPE one of {', '.join(SSH_KEY_TYPES[:3])}, ...)"
        )
    kind, body = parts[0], parts[1]
    try:
        raw = base64.b64decode(body, validate=True) if _B64.fullmatch(body) else b""
    except binascii.Error:
        raw = b""
    if len(raw) < 4 or raw[4 : 4 + int.from_bytes(raw[:4], "big")] != kind.encode():
        raise ValueError(f"the key data is not a valid {kind} public key")
    if len(parts) == 3 and not _KEY_COMMENT.fullmatch(parts[2]):
        raise ValueError("the key comment may only hold letters, digits and @._+:-")
    return " ".join(parts)


def partition_scheme(value: str) -> str:
    """One of :data:`SCHEMES` (case-insensitive)."""
    validate.reject_control(value)
    text = value.strip().upper()
    if text not in SCHEMES:
        raise ValueError(f"{value.strip()!r} is not a partition scheme ({', '.join(SCHEMES)})")
    return text


def disk_count(value: str) -> int:
    """How many data disks the node has: a whole number from 1 to 64."""
    validate.reject_control(value)
    text = value.strip().removesuffix(".0")
    if not text.isdigit() or not 1 <= int(text) <= MAX_DISKS:
        raise ValueError(f"{value.strip()!r} is not a disk count (1-{MAX_DISKS})")
    return int(text)


def post_script(value: str) -> str:
    """The name of a site post-install snippet (``kickstart/post/NAME.sh``), not code."""
    return validate.token(value, "post-install script name")


def http_url(value: str, what: str = "URL") -> str:
    """An http(s) URL whose every character is safe in a boot line, kickstart and shell."""
    validate.reject_control(value)
    text = value.strip()
    match = _URL.fullmatch(text)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise ValueError(
            f"{text!r} is not an allowed {what} (http(s)://host[:port]/path[?a=b&c=d]; "
            "letters, digits and ._~/-=& only)"
        )
    return text


def callback_url(value: str) -> str:
    """:func:`http_url` whose host is an IP address: the installer calls it from inside its
    chroot (Ubuntu's ``curtin in-target``), where a host name may not resolve."""
    text = http_url(value, "callback URL")
    host = str(_URL.fullmatch(text)["host"]).strip("[]")  # type: ignore[index]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"callback URL host {host!r} is a name: use the server's IP address "
            "(a name may not resolve inside the installer)"
        ) from None
    return text


def post_install_url(value: str) -> str:
    """:func:`http_url` called by bmprov itself after completion (a host name is fine)."""
    return http_url(value, "post-install URL")


def disk_name(value: str) -> str:
    """A disk device name as the installer sees it (``sda``, ``nvme0n1``, ``disk/by-path/…``)."""
    validate.reject_control(value)
    text = value.strip()
    if not _DISK.fullmatch(text) or ".." in text:
        raise ValueError(f"{text!r} is not a disk name (letters, digits, ._:/-)")
    return text


def check_scheme_fits(scheme: str, disks: int) -> None:
    """Refuse a scheme the disk count cannot satisfy."""
    need = SCHEMES[scheme]
    if disks < need:
        raise ValueError(f"partition scheme {scheme} needs at least {need} disks; node has {disks}")


def row_check(values: dict[str, Any]) -> tuple[str, str] | None:
    """Sheet-row check: scheme and disk count given together must fit (→ ``(field, msg)``)."""
    scheme, disks = values.get("partition_scheme"), values.get("disks")
    if scheme is None or disks is None:
        return None
    try:
        check_scheme_fits(scheme, disks)
    except ValueError as exc:
        return "partition_scheme", str(exc)
    return None


@dataclass(frozen=True)
class InstallOptions:
    """Everything an install template needs about the OS install of one node."""

    root_password_hash: str | None
    ssh_keys: tuple[str, ...]
    partition_scheme: str
    disks: tuple[str, ...]
    post_script: str | None
    callback_url: str | None
    timezone: str
    locale: str
    keyboard: str

    def __repr__(self) -> str:
        hidden = "set" if self.root_password_hash else "unset"
        return (
            f"InstallOptions(root_password_hash=<{hidden}>, scheme={self.partition_scheme}, "
            f"disks={self.disks}, ssh_keys={len(self.ssh_keys)})"
        )


@dataclass(frozen=True)
class InstallDefaults:
    """The ``[install]`` section, validated once per command."""

    root_password_hash: str | None = None
    ssh_keys: tuple[str, ...] = ()
    partition_scheme: str = "LVM_HBA"
    disks: int = 1
    disk_names: tuple[str, ...] = ()
    post_script: str | None = None
    callback_url: str | None = None
    timezone: str = "UTC"
    locale: str = "en_US.UTF-8"
    keyboard: str = "us"

    @classmethod
    def from_config(cls, config: Config) -> InstallDefaults:
        """Validate ``[install]``; :class:`ConfigError` names the key."""
        raw = config.section("install")
        try:
            return cls(
                root_password_hash=_default_password(raw),
                ssh_keys=tuple(_each(raw, "ssh_keys", ssh_key)),
                partition_scheme=partition_scheme(raw.get("partition_scheme", "LVM_HBA")),
                disks=disk_count(str(raw.get("disks", 1))),
                disk_names=tuple(_each(raw, "disk_names", disk_name)),
                post_script=_opt(raw, "post_script", post_script),
                callback_url=_opt(raw, "callback_url", callback_url),
                timezone=_checked(raw, "timezone", "UTC", _TZ),
                locale=_checked(raw, "locale", "en_US.UTF-8", re.compile(r"[A-Za-z0-9_.@-]+")),
                keyboard=_checked(raw, "keyboard", "us", re.compile(r"[A-Za-z0-9_-]+")),
            )
        except _KeyProblem as exc:
            raise ConfigError(f"{config.path}: install.{exc.key}: {exc.message}") from None

    def for_node(self, options: dict[str, Any]) -> InstallOptions:
        """Merge a node's stored options over the defaults; ValueError if they do not fit.

        Stored values are validated again (they reach files; the state file is not trusted).
        """
        opts = _stored(options)
        scheme = opts.get("partition_scheme") or self.partition_scheme
        count = opts.get("disks") or self.disks
        check_scheme_fits(scheme, count)
        key = opts.get("ssh_key")
        password = opts.get("root_password_hash") or self.root_password_hash
        keys = (key,) if key else self.ssh_keys
        if not password and not keys:
            raise ValueError(
                "nobody could log in: no root password and no SSH key (give the node a root "
                "password or SSH key cell, or set [install] ssh_keys / root_password_hash)"
            )
        return InstallOptions(
            root_password_hash=password,
            ssh_keys=keys,
            partition_scheme=scheme,
            disks=self.disk_list(count),
            post_script=opts.get("post_script") or self.post_script,
            callback_url=opts.get("callback_url") or self.callback_url,
            timezone=self.timezone,
            locale=self.locale,
            keyboard=self.keyboard,
        )

    def disk_list(self, count: int) -> tuple[str, ...]:
        """The first ``count`` disk names (``[install] disk_names``, else sda, sdb, …)."""
        names = self.disk_names or tuple(_sd_name(i) for i in range(MAX_DISKS))
        if count > len(names):
            raise ValueError(f"node has {count} disks but [install] disk_names lists {len(names)}")
        return names[:count]


_STORED: dict[str, Any] = {
    "root_password_hash": password_hash,
    "ssh_key": ssh_key,
    "partition_scheme": partition_scheme,
    "disks": disk_count,
    "post_script": post_script,
    "callback_url": callback_url,
}


def _stored(options: dict[str, Any]) -> dict[str, Any]:
    """A node's stored install options, each re-validated (ValueError names the option)."""
    checked: dict[str, Any] = {}
    for key, parse in _STORED.items():
        value = options.get(key)
        if value in (None, ""):
            continue
        try:
            checked[key] = parse(str(value))
        except ValueError as exc:
            raise ValueError(f"install option {key}: {exc}") from None
    return checked


def _sd_name(index: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    prefix = letters[index // 26 - 1] if index >= 26 else ""
    return f"sd{prefix}{letters[index % 26]}"


class _KeyProblem(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _opt(raw: dict[str, Any], key: str, parse: Any) -> Any:
    if key not in raw:
        return None
    try:
        return parse(str(raw[key]))
    except ValueError as exc:
        raise _KeyProblem(key, str(exc)) from None


def _each(raw: dict[str, Any], key: str, parse: Any) -> list[Any]:
    try:
        return [parse(str(v)) for v in raw.get(key, [])]
    except ValueError as exc:
        raise _KeyProblem(key, str(exc)) from None


def _checked(raw: dict[str, Any], key: str, default: str, pattern: re.Pattern[str]) -> str:
    text = str(raw.get(key, default))
    if not pattern.fullmatch(text):
        raise _KeyProblem(key, f"{text!r} is not allowed")
    return text


def _default_password(raw: dict[str, Any]) -> str | None:
    """``root_password_hash``, or the plain password in the env var ``root_password_env``."""
    if "root_password_hash" in raw:
        return _opt(raw, "root_password_hash", password_hash)  # type: ignore[no-any-return]
    env = raw.get("root_password_env")
    if not env:
        return None
    plain = os.environ.get(str(env))
    if plain is None:
        raise _KeyProblem("root_password_env", f"environment variable {env} is not set")
    try:
        return str.__str__(hash_password(plain, _stable_salt(plain)))
    except ValueError as exc:
        raise _KeyProblem("root_password_env", f"${env}: {exc}") from None
