"""The servers one test session runs against, set up before any test module loads.

PostgreSQL and Redis come from DATABASE_URL/REDIS_URL or, when unset, from the
embedded servers `make run` uses. Each session gets its own fresh database and
queue namespace, so a run never sees another run's data.
"""

import contextlib
import os
import uuid
from pathlib import Path

import psycopg
import psycopg.conninfo
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infra.embedded import services
from infra.signing import generate_private_pem
from tests.smtp import SmtpServer


class ServerStack:
    def __init__(self) -> None:
        self._exit = contextlib.ExitStack()
        self.smtp = SmtpServer()
        self.database = f"gymledger_test_{uuid.uuid4().hex[:10]}"
        self.server_url = ""

    def start(self) -> None:
        urls = self._exit.enter_context(services(Path(".data/test")))
        self.server_url = urls.database_url
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.smtp.start()
        os.environ.update(
            {
                "DATABASE_URL": make_conninfo(self.server_url, dbname=self.database),
                "REDIS_URL": urls.redis_url,
                "ENVIRONMENT": "test",
                "JWT_SECRET": "test-secret-" + uuid.uuid4().hex + uuid.uuid4().hex,
                "AUDIT_SIGNING_KEY": generate_private_pem(),
                "QUEUE_NAMESPACE": f"gymledger-test-{self.database}",
                "MAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.smtp.port),
                "MAIL_MAX_RETRIES": "2",
                "SMTP_TIMEOUT": "2",
                "EXPIRY_INTERVAL_SECONDS": "1",
                "READ_YOUR_WRITES_TIMEOUT": "5",
                "LOG_LEVEL": "WARNING",
                # Every test process and every system a test starts shares one server
                # (max_connections 100 on these machines): small pools.
                "DB_POOL_SIZE": "2",
                # Every test logs in from the same address; the limit has its own test.
                "LOGIN_ATTEMPTS_PER_ADDRESS": "1000000",
            }
        )
        from workers.setup import migrate

        migrate(os.environ["DATABASE_URL"])

    def create_database(self) -> str:
        from workers.setup import migrate

        name = f"gymledger_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_conninfo(self.server_url, dbname=name)
        migrate(url)
        return url

    def drop_database(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
            )

    def stop(self) -> None:
        self.smtp.stop()
        with contextlib.suppress(psycopg.Error):
            self.drop_database(os.environ["DATABASE_URL"])
        self._exit.close()
