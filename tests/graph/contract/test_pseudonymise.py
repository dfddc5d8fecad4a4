import os
import stat

import pytest

from graph.contract.pseudonymise import KEY_FILE, MissingKeyError, Pseudonymiser, load_key
from graph.settings import Settings


def test_keyed_deterministic_and_kind_separated():
    p = Pseudonymiser(b"k" * 32)
    assert p.pseudonym("phone", "+14155552671") == p.pseudonym("phone", "+14155552671")
    assert p.pseudonym("phone", "123") != p.pseudonym("national_id", "123")
    assert Pseudonymiser(b"x" * 32).pseudonym("phone", "1") != p.pseudonym("phone", "1")
    assert len(p.pseudonym("email", "a@b.c")) == 32
    assert "k" * 16 not in repr(p)


def test_missing_key_is_an_error_outside_demo(tmp_path):
    with pytest.raises(MissingKeyError, match="RINGWATCH_PSEUDONYM_KEY"):
        load_key(Settings(data_dir=tmp_path, demo=False, pseudonym_key=None))


def test_demo_key_is_generated_once_with_0600(tmp_path):
    s = Settings(data_dir=tmp_path, demo=True, pseudonym_key=None)
    k1 = load_key(s)
    k2 = load_key(s)
    assert k1 == k2 and len(k1) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode)
    assert mode == 0o600


def test_configured_key_wins(tmp_path):
    s = Settings(data_dir=tmp_path, pseudonym_key="a-long-configured-secret-value")
    assert load_key(s) == b"a-long-configured-secret-value"
