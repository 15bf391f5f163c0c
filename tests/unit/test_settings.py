import pytest

from infra.settings import ConfigError, load_settings

BASE = {"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert (settings.host, settings.port, settings.api_prefix) == ("127.0.0.1", 8000, "/api/v1")
    assert "postgresql" not in repr(settings)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"ENVIRONMENT": "production", "PORT": "http", "MAIL_BACKEND": "pigeon"})
    text = str(error.value)
    for expected in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "PORT", "MAIL_BACKEND"):
        assert expected in text


def test_weak_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET must be at least 32"):
        load_settings({**BASE, "JWT_SECRET": "short"})


@pytest.mark.parametrize(
    "sender", ["a@b.org, c@d.org", "GymLedger <a@b.org>\r\nBcc: x@y.org", "nobody", "<>"]
)
def test_mail_from_must_be_one_address(sender: str) -> None:
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        load_settings({**BASE, "MAIL_FROM": sender})
    assert load_settings({**BASE, "MAIL_FROM": "Gym <a@b.org>"}).mail_from == "Gym <a@b.org>"
