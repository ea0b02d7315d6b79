"""Passwords of agencies' encrypted workbooks: read from where the source YAML says (an environment variable or a
Prefect Secret block), used in memory to decrypt the bytes already read (never a decrypted copy on disk), and never
written into a message, a log line or the warehouse: a message names the setting to fix, not the password.

Not named ``secrets.py``: that shadows the standard library's ``secrets`` (numpy imports it) wherever ``flows/`` is
on ``sys.path``; a Dask worker failed to start that way."""

from __future__ import annotations

import io
import os

from schemas.spec_base import PasswordSpec
from warehouse import connect as _connect


class PasswordProblem(ValueError):
    """The workbook cannot be decrypted; the message names the setting (the environment variable or block)."""


def secret_block_value(name: str) -> object:
    """The value a Prefect Secret block holds (Prefect is imported only now: its import costs seconds on a busy
    machine). Raises whatever loading raises (no block, no server); callers turn that into a sentence naming the
    setting. The one reader of Secret blocks: workbook passwords, remote credentials (flows/remote.py) and the
    warehouse key (registered with warehouse/connect.py below, and by dcf's read-only commands)."""
    from prefect.blocks.system import Secret

    return Secret.load(name, _sync=True).get()  # type: ignore[call-arg, union-attr]


def password_of(spec: PasswordSpec) -> str:
    """The password the spec points at; PasswordProblem when it is not set or the block cannot be read."""
    if spec.env:
        variable = os.environ.get(spec.env)
        if not variable:
            raise PasswordProblem(f"the {spec.setting} is not set (the source's 'password' names it)")
        return variable
    try:
        value = secret_block_value(str(spec.secret))
    except Exception as exc:  # noqa: BLE001 - no block, no server, no permission: one sentence naming the block
        raise PasswordProblem(f"the {spec.setting} could not be read ({type(exc).__name__})") from None
    if not isinstance(value, str) or not value:
        raise PasswordProblem(f"the {spec.setting} holds no text password")
    return value


def decrypt(data: bytes, spec: PasswordSpec) -> bytes:
    """The decrypted workbook (xlsx bytes) of an encrypted Office file, in memory."""
    import msoffcrypto
    from msoffcrypto.exceptions import InvalidKeyError

    password = password_of(spec)
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        if not office.is_encrypted():
            return data
        office.load_key(password=password)
        out = io.BytesIO()
        office.decrypt(out)
    except InvalidKeyError:
        raise PasswordProblem(f"the password from the {spec.setting} does not open this workbook") from None
    except Exception as exc:  # noqa: BLE001 - a damaged container: say so without the library's internals
        raise PasswordProblem(f"the encrypted workbook could not be decrypted ({type(exc).__name__})") from None
    return out.getvalue()


# The warehouse key may sit in a Prefect Secret block (DCF_WAREHOUSE_KEY_SECRET); warehouse/ imports no Prefect, so
# the orchestration layer says how such a block is read (every flow imports this module through flows/process.py).
_connect.use_block_reader(secret_block_value)
