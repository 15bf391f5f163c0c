import os
from pathlib import Path

import pytest

from infra.settings import ConfigError, load_key_ring, load_settings
from infra.signing import generate_private_pem, key_ring, public_pem

BASE = {"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**BASE, "DATA_DIR": str(tmp_path / "data")}


def test_defaults(env: dict[str, str]) -> None:
    settings = load_settings(env)
    assert (settings.host, settings.port, settings.api_prefix) == ("127.0.0.1", 8000, "/api/v1")
    assert "postgresql" not in repr(settings)
    assert "PRIVATE KEY" not in repr(settings)
    assert settings.mail_relay_linger_seconds == 0.1


def test_lingers_in_milliseconds(env: dict[str, str]) -> None:
    assert load_settings({**env, "MAIL_RELAY_LINGER_MS": "0"}).mail_relay_linger_seconds == 0
    assert load_settings({**env, "PROJECTOR_LINGER_MS": "0.5"}).projector_linger_seconds == 0.0005
    assert load_settings(env).projector_linger_seconds == 0.002
    for name in ("MAIL_RELAY_LINGER_MS", "PROJECTOR_LINGER_MS"):
        with pytest.raises(ConfigError, match=name):
            load_settings({**env, name: "-5"})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"ENVIRONMENT": "production", "PORT": "http", "MAIL_BACKEND": "pigeon"})
    text = str(error.value)
    for expected in (
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_SECRET",
        "AUDIT_SIGNING_KEY",
        "PORT",
        "MAIL_BACKEND",
    ):
        assert expected in text


def test_weak_secret_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET must be at least 32"):
        load_settings({**env, "JWT_SECRET": "short"})


def test_development_keys_are_made_once_per_data_directory(
    env: dict[str, str], tmp_path: Path
) -> None:
    first, again = load_settings(env), load_settings(env)
    assert first.jwt_secret == again.jwt_secret
    assert first.key_ring().signing_key_id == again.key_ring().signing_key_id
    assert load_key_ring(env).public.keys() == first.key_ring().public.keys()  # the CLI's view
    for name in ("jwt_secret", "audit_signing_key.pem"):
        assert os.stat(Path(env["DATA_DIR"]) / name).st_mode & 0o777 == 0o600
    elsewhere = load_settings({**BASE, "DATA_DIR": str(tmp_path / "other")})
    assert elsewhere.jwt_secret != first.jwt_secret  # no key is built into the code
    assert elsewhere.key_ring().signing_key_id != first.key_ring().signing_key_id


def test_signing_key_from_a_file_or_inline_and_retired_public_keys(
    env: dict[str, str], tmp_path: Path
) -> None:
    pem = generate_private_pem()
    path = tmp_path / "signing.pem"
    path.write_text(pem)
    retired = key_ring(generate_private_pem())
    retired_pem = tmp_path / "retired.pem"
    retired_pem.write_text("".join(public_pem(k) for k in retired.public.values()))
    inline = load_settings({**env, "AUDIT_SIGNING_KEY": pem}).key_ring()
    from_file = load_settings(
        {**env, "AUDIT_SIGNING_KEY": str(path), "AUDIT_PUBLIC_KEYS": str(retired_pem)}
    ).key_ring()
    assert inline.signing_key_id == from_file.signing_key_id
    assert set(from_file.public) == {inline.signing_key_id, retired.signing_key_id}


def test_an_unreadable_signing_key_is_a_configuration_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY"):
        load_settings({**env, "AUDIT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n"})
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY"):
        load_settings({**env, "AUDIT_SIGNING_KEY": "/no/such/key.pem"})


@pytest.mark.parametrize(
    "sender", ["a@b.org, c@d.org", "GymLedger <a@b.org>\r\nBcc: x@y.org", "nobody", "<>"]
)
def test_mail_from_must_be_one_address(sender: str, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        load_settings({**env, "MAIL_FROM": sender})
    assert load_settings({**env, "MAIL_FROM": "Gym <a@b.org>"}).mail_from == "Gym <a@b.org>"


def test_a_process_that_only_verifies_needs_no_private_key_in_production(
    env: dict[str, str], tmp_path: Path
) -> None:
    signer = key_ring(generate_private_pem())
    public = tmp_path / "public.pem"
    public.write_text("".join(public_pem(k) for k in signer.public.values()))
    production = {**env, "ENVIRONMENT": "production", "JWT_SECRET": "j" * 40}
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY is required"):
        load_settings(production)
    ring = load_settings({**production, "AUDIT_PUBLIC_KEYS": str(public)}).key_ring()
    assert ring.signing is None
    assert set(ring.public) == set(signer.public)


def test_supervisor_limits(env: dict[str, str]) -> None:
    settings = load_settings(env)
    assert (settings.supervisor_max_restarts, settings.supervisor_restart_window_seconds) == (
        5,
        60.0,
    )
    given = {**env, "SUPERVISOR_MAX_RESTARTS": "0", "SUPERVISOR_RESTART_WINDOW_SECONDS": "2.5"}
    assert load_settings(given).supervisor_max_restarts == 0
    assert load_settings(given).supervisor_restart_window_seconds == 2.5
    bad = {**env, "SUPERVISOR_MAX_RESTARTS": "-1", "SUPERVISOR_RESTART_WINDOW_SECONDS": "soon"}
    with pytest.raises(ConfigError) as error:
        load_settings(bad)
    assert "SUPERVISOR_MAX_RESTARTS must be >= 0" in str(error.value)
    assert "SUPERVISOR_RESTART_WINDOW_SECONDS must be a number" in str(error.value)
