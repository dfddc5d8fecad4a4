from datetime import date

import pytest

from graph.contract import normalise


def test_email_case_plus_tags_and_gmail_dots():
    assert normalise.email(" Jane.Doe+promo@GoogleMail.com ") == "janedoe@gmail.com"
    assert normalise.email("a.b+x@Example.ORG") == "a.b@example.org"
    with pytest.raises(ValueError):
        normalise.email("no-at-sign.example.com")


def test_phone_formats_collapse_to_e164():
    forms = ["(415) 555-2671", "415.555.2671", "+1 415 555 2671", "1-415-555-2671"]
    assert {normalise.phone(f, "US") for f in forms} == {"+14155552671"}
    assert normalise.phone("020 7946 0018", "GB") == "+442079460018"
    with pytest.raises(ValueError):
        normalise.phone("12", "US")


def test_address_abbreviations_case_and_spacing():
    assert normalise.address("12  Main Street, Apartment 4") == normalise.address("12 main st apt 4")


def test_ip_and_prefix():
    assert normalise.ip("192.168.10.77") == ("192.168.10.77", "192.168.10.0/24")
    assert normalise.ip("2001:db8::1") == ("2001:db8::1", "2001:db8::/64")
    assert normalise.ip("::ffff:10.0.0.1") == ("10.0.0.1", "10.0.0.0/24")
    with pytest.raises(ValueError):
        normalise.ip("10.0.0.256")


def test_names_fold_accents_and_case():
    assert normalise.name("  José  ÁLVAREZ ") == normalise.name("jose alvarez")


def test_date_of_birth_strict():
    assert normalise.date_of_birth("1990-02-03") == date(1990, 2, 3)
    for bad in ("1990-2-3", "1990-02-30", "1850-01-01"):
        with pytest.raises(ValueError):
            normalise.date_of_birth(bad)


def test_reasons_never_echo_the_value():
    with pytest.raises(ValueError) as exc:
        normalise.email("secret-person@")
    assert "secret" not in str(exc.value)
