"""PostgreSQL connection helpers shared by the API, projector and workers."""

from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Where eventsourcing keeps the event log (its default) and the live read tables are:
# what the services' unqualified names resolve to on the default search path.
LIVE_SCHEMA = "public"
EVENTS_TABLE = "gymledger_events"
# eventsourcing's recorder NOTIFYs on a channel named after the events table.
EVENTS_CHANNEL = EVENTS_TABLE
# The projector NOTIFYs here, with its new position, after each committed batch.
PROJECTED_CHANNEL = "gymledger_projected"
# ... and here, with the gym's id, when a gym's timezone may have changed or it closed,
# so API processes can drop what they cached about it (api/gym_cache.py).
GYM_CHANGED_CHANNEL = "gymledger_gym_changed"


def eventsourcing_env(database_url: str, pool_size: int = 5) -> dict[str, str]:
    """Translate a libpq URL into the variables eventsourcing's PostgreSQL factory reads."""
    info = conninfo_to_dict(database_url)
    return {
        # eventsourcing's PostgreSQL persistence, failing fast when the server is down,
        # with appends in one round trip (infra/event_store.py).
        "PERSISTENCE_MODULE": "infra.event_store:Factory",
        "APPLICATION_RECORDER_TOPIC": "infra.event_store:SingleTripRecorder",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        # No ping before each use: it was a round trip per read and per append (about
        # 0.6 ms of CPU per command, bench/README.md). A connection broken by a server
        # restart fails before anything is sent, and eventsourcing retries that call on
        # another connection.
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_LOCK_TIMEOUT": "5",
        # Seconds to wait for a pooled connection (not retried): then the caller answers
        # 503. A healthy pool hands one out in microseconds.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "CREATE_TABLE": "n",
    }


# How the API's read sessions plan: generic plans, the reads being a few fixed
# statements (prepared after five uses); planning each anew was a third of
# PostgreSQL's CPU per list query (0.40 against 0.13-0.17 ms for `active=`,
# bench/README.md). No JIT: a generic plan's cost assumes any LIMIT, so it passed
# jit_above_cost on a gym of 28,000 customers and each page compiled for 18 ms.
# Times in UTC, as the API answers them: psycopg loads a timestamptz in a named zone
# ('Etc/UTC', the server's default) at twice the CPU of one in UTC (0.45 µs a value).
READ_SESSION = {"plan_cache_mode": "force_generic_plan", "jit": "off", "timezone": "UTC"}


def read_session_url(database_url: str) -> str:
    return with_settings(database_url, **READ_SESSION)


def with_settings(database_url: str, **settings: str) -> str:
    """`database_url` whose sessions start with these server settings, after any the
    URL's own `options` give (a later `-c` wins, so ours hold)."""
    given = str(conninfo_to_dict(database_url).get("options") or "")
    ours = " ".join(f"-c {name}={value}" for name, value in settings.items())
    return make_conninfo(database_url, options=f"{given} {ours}".strip())
