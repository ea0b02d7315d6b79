"""An encrypted workbook whose password sits in a Prefect Secret block (the source says {secret: name}), read
through the session's real Prefect API (tests/system/conftest.py)."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret

from flows.reference import read_reference
from schemas.spec_base import PasswordSpec
from tests.conftest import REFERENCE
from tests.integration.test_protected_workbooks import PASSWORD, _encrypted_copy, _mod, _process

pytestmark = pytest.mark.slow


def test_a_password_from_a_secret_block_opens_the_workbook(sample_inbox, tmp_path):
    reference = read_reference(REFERENCE)
    plain, mod = _mod(sample_inbox)
    locked = _encrypted_copy(plain, tmp_path / "mod" / plain.name)
    spec = mod.spec_for(plain.name).model_copy(update={"password": PasswordSpec(secret="dcf-test-mod-password")})

    missing = _process(locked, mod, spec, reference)
    assert missing.status == "failed"
    assert "the Prefect Secret block 'dcf-test-mod-password' could not be read" in missing.message

    Secret(value=PASSWORD).save("dcf-test-mod-password", overwrite=True)
    batch = _process(locked, mod, spec, reference)
    assert batch.status == "loaded" and batch.counts == _process(plain, mod, mod.spec_for(plain.name), reference).counts
    assert PASSWORD not in (batch.message or "")
