"""Configuration from the environment, validated once at start-up.

Every problem is collected and reported together, one line each, so an operator
fixes a broken deployment in one pass instead of one restart per mistake.
"""

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.mail_address import is_sender
from infra.signing import KeyRing, SigningKeyError, generate_private_pem, key_ring, pem_text

ENVIRONMENTS = ("development", "test", "production")
MAIL_BACKENDS = ("console", "smtp", "directory")
# Off in development and tests (one address signs up many gyms there), on in production.
SIGNUP_LIMIT_IN_PRODUCTION = 10


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    api_prefix: str = "/api/v1"
    jwt_secret: str = field(default="", repr=False)
    # Ed25519 private key (PEM) that signs the audit chain's checkpoints: never in the database.
    audit_signing_key: str = field(default="", repr=False)
    # Retired public keys (PEM), kept so checkpoints signed before a rotation still verify.
    audit_public_keys: str = ""
    # Where each signed checkpoint is also appended, outside the database ("" = off).
    audit_witness_dir: str = ""
    audit_verifications_per_minute: int = 10
    data_dir: str = ".data"
    # Connections per API process: the write side's pool (as many again on overflow)
    # and twice as many for reads. The tests run many processes on one server: fewer.
    db_pool_size: int = 5
    jwt_ttl_seconds: int = 24 * 3600
    read_your_writes_timeout: float = 2.0
    # How long a command may keep deciding again while other writers win its stream.
    command_timeout: float = 10.0
    projector_batch_size: int = 500
    queue_namespace: str = "gymledger"
    mail_backend: str = "console"
    mail_from: str = "GymLedger <no-reply@gymledger.local>"
    mail_dir: str = ".data/mail"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS from the first byte (port 465)
    smtp_ca_file: str = ""  # CA bundle for a private CA; "" = the system's trust store
    smtp_timeout: float = 10.0
    mail_max_retries: int = 8
    mail_requeue_after_seconds: int = 300
    mail_relay_linger_seconds: float = 0.1
    projector_linger_seconds: float = 0.002
    expiry_interval_seconds: float = 60.0
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    login_attempts_per_email: int = 10
    login_attempts_per_address: int = 30
    login_window_seconds: int = 60
    # Signups and auditor-token grants per client address per login window; 0: no limit.
    signup_attempts_per_address: int = 0
    ready_max_lag_events: int = 10_000
    # `gymledger run` gives up on a child that crashed this often within the window.
    supervisor_max_restarts: int = 5
    supervisor_restart_window_seconds: float = 60.0
    log_level: str = "INFO"

    def key_ring(self) -> KeyRing:
        """The checkpoint signing key and every public key that verifies checkpoints."""
        return key_ring(self.audit_signing_key or None, self.audit_public_keys or None)

    def __repr__(self) -> str:  # never print secrets or credentials in URLs
        return f"Settings(environment={self.environment!r}, api_prefix={self.api_prefix!r})"


def _int(env: Mapping[str, str], key: str, default: int, problems: list[str], low: int = 0) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{key} must be an integer, got {raw!r}")
        return default
    if value < low:
        problems.append(f"{key} must be >= {low}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, problems: list[str]) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{key} must be a number, got {raw!r}")
        return default
    if value < 0:
        problems.append(f"{key} must be >= 0, got {value}")
    return value


def _flag(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "false").lower() in ("1", "true", "yes")


def _smtp_security(env: Mapping[str, str], problems: list[str]) -> tuple[bool, bool, str]:
    """(STARTTLS, implicit TLS, CA file): at most one of the two, and a CA file that exists."""
    starttls, implicit = _flag(env, "SMTP_STARTTLS"), _flag(env, "SMTP_TLS")
    if starttls and implicit:
        problems.append("SMTP_STARTTLS and SMTP_TLS exclude each other: pick one")
    ca_file = env.get("SMTP_CA_FILE", "")
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"SMTP_CA_FILE {ca_file!r} is not a readable file")
    return starttls, implicit, ca_file


def _dev_file(data_dir: str, name: str, make: Callable[[], str], create: bool = True) -> str:
    """A development secret made once under the data directory, so tokens and
    signatures survive restarts and every entry point (the CLI too) finds the same one.
    Written aside and linked into place, so a process starting at the same moment reads
    either nothing or the whole secret, never half of it."""
    path = Path(data_dir) / name
    if not path.exists():
        if not create:
            return ""
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(make())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()


def _given_or_dev(
    env: Mapping[str, str],
    key: str,
    environment: str,
    problems: list[str],
    dev: tuple[str, str, Callable[[], str]],
    create: bool = True,
) -> tuple[str, bool]:
    """(value, whether it came from the environment). Production must be given the
    secret; development and tests make it once under the data directory."""
    value = env.get(key) or ""
    if value:
        return value, True
    if environment == "production":
        problems.append(f"{key} is required in production")
        return "", False
    return _dev_file(*dev, create=create), False


def _jwt_secret(
    env: Mapping[str, str], environment: str, data_dir: str, problems: list[str]
) -> str:
    dev = (data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48))
    value, given = _given_or_dev(env, "JWT_SECRET", environment, problems, dev)
    if given and len(value) < 32:
        problems.append("JWT_SECRET must be at least 32 characters")
    return value


def _signing_key(
    env: Mapping[str, str],
    environment: str,
    data_dir: str,
    problems: list[str],
    create: bool = True,
) -> str:
    """The PEM text of the checkpoint signing key (AUDIT_SIGNING_KEY: a path or the PEM)."""
    dev = (data_dir, "audit_signing_key.pem", generate_private_pem)
    value, given = _given_or_dev(env, "AUDIT_SIGNING_KEY", environment, problems, dev, create)
    if not given:
        return value
    try:
        key_ring(value)
    except SigningKeyError as error:
        problems.append(f"AUDIT_SIGNING_KEY: {error}")
        return ""
    return pem_text(value)


def _public_keys(env: Mapping[str, str], problems: list[str]) -> str:
    value = env.get("AUDIT_PUBLIC_KEYS") or ""
    if not value:
        return ""
    try:
        key_ring(None, value)
    except SigningKeyError as error:
        problems.append(f"AUDIT_PUBLIC_KEYS: {error}")
        return ""
    return pem_text(value)


def load_key_ring(env: Mapping[str, str] | None = None) -> KeyRing:
    """The public keys (and, where configured, the signing key) without the rest of
    the settings: what offline verification of an export needs, and nothing else.
    Never makes a development key: a new key would verify nothing."""
    env = os.environ if env is None else env
    problems: list[str] = []
    environment = env.get("ENVIRONMENT", "development")
    signing = ""
    if env.get("AUDIT_SIGNING_KEY") or environment != "production":
        data_dir = env.get("DATA_DIR", ".data")
        signing = _signing_key(env, environment, data_dir, problems, create=False)
    public = _public_keys(env, problems)
    if problems:
        raise ConfigError(problems)
    return key_ring(signing or None, public or None)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    problems: list[str] = []
    get = env.get
    environment = get("ENVIRONMENT", "development")
    if environment not in ENVIRONMENTS:
        problems.append(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
    for key in ("DATABASE_URL", "REDIS_URL"):
        if not get(key):
            problems.append(f"{key} is required (make run / make test start embedded servers)")
    data_dir = get("DATA_DIR", ".data")
    jwt_secret = _jwt_secret(env, environment, data_dir, problems)
    # Only the projector signs. A process that only verifies (API, worker) may be given
    # the public keys alone in production, and then never holds the private key.
    verifies_only = environment == "production" and bool(get("AUDIT_PUBLIC_KEYS"))
    if verifies_only and not get("AUDIT_SIGNING_KEY"):
        audit_signing_key = ""
    else:
        audit_signing_key = _signing_key(env, environment, data_dir, problems)
    prefix = get("API_PREFIX", "/api/v1").rstrip("/")
    if prefix and not prefix.startswith("/"):
        problems.append("API_PREFIX must start with '/'")
    smtp_starttls, smtp_tls, smtp_ca_file = _smtp_security(env, problems)
    mail_from = get("MAIL_FROM") or Settings.mail_from
    if not is_sender(mail_from):
        problems.append("MAIL_FROM must be one address on one line, e.g. 'Gym <no-reply@x.org>'")
    mail_backend = get("MAIL_BACKEND", "console")
    if mail_backend not in MAIL_BACKENDS:
        problems.append(f"MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}")
    settings = Settings(
        database_url=get("DATABASE_URL", ""),
        redis_url=get("REDIS_URL", ""),
        environment=environment,
        host=get("HOST", "127.0.0.1"),
        port=_int(env, "PORT", 8000, problems, low=1),
        api_prefix=prefix,
        jwt_secret=jwt_secret,
        audit_signing_key=audit_signing_key,
        audit_public_keys=_public_keys(env, problems),
        audit_witness_dir=get("AUDIT_WITNESS_DIR", ""),
        audit_verifications_per_minute=_int(
            env, "AUDIT_VERIFICATIONS_PER_MINUTE", 10, problems, low=1
        ),
        data_dir=data_dir,
        db_pool_size=_int(env, "DB_POOL_SIZE", 5, problems, low=1),
        jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 24 * 3600, problems, low=60),
        read_your_writes_timeout=_float(env, "READ_YOUR_WRITES_TIMEOUT", 2.0, problems),
        command_timeout=_float(env, "COMMAND_TIMEOUT", 10.0, problems),
        projector_batch_size=_int(env, "PROJECTOR_BATCH_SIZE", 500, problems, low=1),
        queue_namespace=get("QUEUE_NAMESPACE", "gymledger"),
        mail_backend=mail_backend,
        mail_from=mail_from,
        mail_dir=get("MAIL_DIR", ".data/mail"),
        smtp_host=get("SMTP_HOST", "127.0.0.1"),
        smtp_port=_int(env, "SMTP_PORT", 465 if smtp_tls else 25, problems, low=1),
        smtp_username=get("SMTP_USERNAME", ""),
        smtp_password=get("SMTP_PASSWORD", ""),
        smtp_starttls=smtp_starttls,
        smtp_tls=smtp_tls,
        smtp_ca_file=smtp_ca_file,
        smtp_timeout=_float(env, "SMTP_TIMEOUT", 10.0, problems),
        mail_max_retries=_int(env, "MAIL_MAX_RETRIES", 8, problems),
        mail_requeue_after_seconds=_int(env, "MAIL_REQUEUE_AFTER_SECONDS", 300, problems, low=1),
        mail_relay_linger_seconds=_int(env, "MAIL_RELAY_LINGER_MS", 100, problems) / 1000,
        projector_linger_seconds=_float(env, "PROJECTOR_LINGER_MS", 2.0, problems) / 1000,
        expiry_interval_seconds=_float(env, "EXPIRY_INTERVAL_SECONDS", 60.0, problems),
        cors_origins=tuple(o.strip() for o in get("CORS_ORIGINS", "").split(",") if o.strip()),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, problems, low=1024),
        login_attempts_per_email=_int(env, "LOGIN_ATTEMPTS_PER_EMAIL", 10, problems, low=1),
        login_attempts_per_address=_int(env, "LOGIN_ATTEMPTS_PER_ADDRESS", 30, problems, low=1),
        login_window_seconds=_int(env, "LOGIN_WINDOW_SECONDS", 60, problems, low=1),
        signup_attempts_per_address=_int(
            env,
            "SIGNUP_ATTEMPTS_PER_ADDRESS",
            SIGNUP_LIMIT_IN_PRODUCTION if environment == "production" else 0,
            problems,
        ),
        ready_max_lag_events=_int(env, "READY_MAX_LAG_EVENTS", 10_000, problems, low=1),
        supervisor_max_restarts=_int(env, "SUPERVISOR_MAX_RESTARTS", 5, problems),
        supervisor_restart_window_seconds=_float(
            env, "SUPERVISOR_RESTART_WINDOW_SECONDS", 60.0, problems
        ),
        log_level=get("LOG_LEVEL", "INFO").upper(),
    )
    if problems:
        raise ConfigError(problems)
    return settings
