"""SHA-crypt password hashes (``$6$`` SHA-512, ``$5$`` SHA-256), as /etc/shadow holds them.

Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" in plain Python, so the
``password_hash`` filter needs neither the ``crypt`` module (removed in Python 3.13)
nor passlib. The output is byte-identical to glibc's crypt(3) and ``openssl passwd -6``.
"""

from __future__ import annotations

import hashlib

ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
ROUNDS_MIN, ROUNDS_MAX = 1000, 999_999_999
SALT_MAX = 16

# the byte order of the final digest's encoding, three bytes to four characters
_ORDER = {
    "sha512": ([(0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
                (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
                (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16),
                (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41)], (None, None, 63), 2),
    "sha256": ([(0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
                (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29)], (None, 31, 30), 3),
}
PREFIX = {"sha512": "$6$", "sha256": "$5$"}


def sha_crypt(password: str, salt: str, rounds: int | None = None,
              method: str = "sha512") -> str:
    """The crypt(3) string of ``password``: ``$6$<salt>$<hash>`` (``$6$rounds=N$...``
    when ``rounds`` is given). ``salt`` is cut to 16 characters, as crypt(3) does."""
    if method not in _ORDER:
        raise ValueError(f"unknown hash {method!r}; use sha512 or sha256")
    if not salt or any(c not in ALPHABET for c in salt):
        raise ValueError("the salt must be 1 to 16 characters of [./0-9A-Za-z]")
    digest = getattr(hashlib, method)
    size = digest().digest_size
    key = password.encode("utf-8")
    salt_b = salt[:SALT_MAX].encode("ascii")
    count = ROUNDS_DEFAULT if rounds is None else min(max(int(rounds), ROUNDS_MIN), ROUNDS_MAX)

    b = digest(key + salt_b + key).digest()
    a = digest(key + salt_b)
    n = len(key)
    while n > size:
        a.update(b)
        n -= size
    a.update(b[:n])
    n = len(key)
    while n > 0:
        a.update(b if n & 1 else key)
        n >>= 1
    c = a.digest()

    dp = digest(key * len(key)).digest()
    p = (dp * (len(key) // size + 1))[:len(key)]
    ds = digest(salt_b * (16 + c[0])).digest()
    s = (ds * (len(salt_b) // size + 1))[:len(salt_b)]

    for i in range(count):
        h = digest(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()

    triples, last, width = _ORDER[method]
    out = [_b64(c[x], c[y], c[z], 4) for x, y, z in triples]
    out.append(_b64(*(0 if i is None else c[i] for i in last), width))
    head = PREFIX[method] + (f"rounds={count}$" if rounds is not None else "")
    return f"{head}{salt_b.decode()}${''.join(out)}"


def _b64(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    chars = []
    for _ in range(n):
        chars.append(ALPHABET[w & 0x3F])
        w >>= 6
    return "".join(chars)


def stable_salt(password: str, size: int = SALT_MAX) -> str:
    """A salt derived from the password itself, so the same password always gives the
    same hash and a run that writes it is idempotent (give ``salt`` to choose one)."""
    raw = hashlib.sha256(b"trueup password_hash\0" + password.encode("utf-8")).digest()
    return "".join(ALPHABET[x & 0x3F] for x in raw[:size])
