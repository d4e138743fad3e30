"""The source this server runs, offered as the AGPL asks (section 13)."""

import io
import tarfile

from django.urls import reverse

from mailservice.source import build_source_archive


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_footer_offers_the_running_source_unless_another_place_is_set(client, settings, db):
    settings.SOURCE_CODE_URL = ""
    page = client.get(reverse("subscriptions:privacy")).content.decode()
    assert f'href="{reverse("source-code")}"' in page

    settings.SOURCE_CODE_URL = "https://code.example/our-dailyq"
    page = client.get(reverse("subscriptions:privacy")).content.decode()
    assert 'href="https://code.example/our-dailyq"' in page


def test_the_archive_holds_the_code_this_server_runs(client, settings):
    response = client.get(reverse("source-code"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert "dailyq-source.tar.gz" in response["Content-Disposition"]
    files = members(b"".join(response.streaming_content) if response.streaming else response.content)
    for path in ("LICENSE", "manage.py", ".importlinter", "mailservice/source.py", "mailer/starter_questions/LICENSE"):
        assert (settings.BASE_DIR / path).read_bytes() == files[f"dailyq/{path}"], path


def test_the_archive_leaves_out_secrets_data_and_build_leftovers(tmp_path):
    (tmp_path / "mailer" / "__pycache__").mkdir(parents=True)
    (tmp_path / "mailer" / "services.py").write_text("# code\n")
    (tmp_path / "mailer" / "__pycache__" / "services.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "db.sqlite3").write_bytes(b"data")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib.py").write_text("")
    (tmp_path / ".env").write_text("SECRET_KEY=s3cret\n")
    (tmp_path / ".env.example").write_text("SECRET_KEY=\n")
    (tmp_path / "mailservice").mkdir()
    (tmp_path / "mailservice" / ".env.production").write_text("SECRET_KEY=s3cret\n")
    (tmp_path / "mailservice" / "tls.key").write_text("key")
    (tmp_path / "LICENSE").write_text("AGPL\n")

    files = members(build_source_archive(tmp_path))

    assert sorted(files) == ["dailyq/.env.example", "dailyq/LICENSE", "dailyq/mailer/services.py"]
    assert build_source_archive(tmp_path) == build_source_archive(tmp_path)
