"""The directory mail backend: one file per mail key, written whole, directory made
when missing (also when removed while the worker runs)."""

import shutil
from pathlib import Path

from infra.mail import DirectoryBackend, Mail, message_bytes

SENDER = "GymLedger <no-reply@gymledger.local>"


def mail(key: str, body: str = "Hello") -> Mail:
    return Mail(key=key, recipient="a@example.com", subject="Hi", body=body)


def test_each_mail_is_one_file_named_by_its_key(tmp_path: Path) -> None:
    backend = DirectoryBackend(tmp_path / "new" / "mail", SENDER)
    sent = [mail("welcome-customer:1"), mail("welcome/gym:2", body="x" * 100_000)]
    assert backend.send_many(sent) == [None, None]
    files = sorted(p.name for p in (tmp_path / "new" / "mail").iterdir())
    assert files == ["welcome-customer_1.eml", "welcome_gym_2.eml"]
    written = (tmp_path / "new" / "mail" / "welcome_gym_2.eml").read_bytes()
    assert written == message_bytes(sent[1], SENDER)


def test_a_second_send_overwrites_and_a_removed_directory_comes_back(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    backend = DirectoryBackend(directory, SENDER)
    backend.send(mail("k:1", body="first"))
    backend.send(mail("k:1", body="second"))
    assert [p.name for p in directory.iterdir()] == ["k_1.eml"]
    assert (directory / "k_1.eml").read_bytes().endswith(b"second")
    shutil.rmtree(directory)
    backend.send(mail("k:2"))
    assert [p.name for p in directory.iterdir()] == ["k_2.eml"]


def test_a_failed_mail_fails_alone(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    directory.mkdir()
    (directory / "k_2.eml.tmp").mkdir()  # its temporary file cannot be made
    results = DirectoryBackend(directory, SENDER).send_many([mail("k:1"), mail("k:2"), mail("k:3")])
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], OSError)
    assert sorted(p.name for p in directory.iterdir()) == ["k_1.eml", "k_2.eml.tmp", "k_3.eml"]
