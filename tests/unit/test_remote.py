"""Remote drops, without a server: where a drop is (location parsing), what a source YAML may say about it (strict
validation naming the key), what is downloaded (the decision from the listing alone), and the mirror itself over
fsspec's in-memory file system and a local folder (links, FIFOs, a file gone from the drop). The real SFTP server
is tests/system/test_remote_inbox.py."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from flows import remote
from flows.remote import Listing, Plan, RemoteEntry, change_token, needs_download, plan, scrub
from flows.retry import RetryPolicy
from schemas.batch import FileBatch
from schemas.sources import SourceConfig, SourceConfigError, load_source
from schemas.spec_remote import Location, RemoteSpec, parse_location

ROOT = Path(__file__).resolve().parents[2]
MOD = yaml.safe_load((ROOT / "sources" / "mod.yaml").read_text(encoding="utf-8"))
FAST = RetryPolicy(attempts=2, base_delay=0.1)


@pytest.mark.parametrize(
    "text,location,shown",
    [
        (
            "sftp://dcf@drop.mod.example/outgoing/budget/",
            Location("sftp", "/outgoing/budget", "drop.mod.example", 22, "dcf"),
            "sftp://dcf@drop.mod.example:22/outgoing/budget/",
        ),
        (
            "ssh://dcf@10.0.0.5:2222//drop/./mod",
            Location("sftp", "/drop/mod", "10.0.0.5", 2222, "dcf"),
            "sftp://dcf@10.0.0.5:2222/drop/mod/",
        ),
        ("sftp://dcf@[::1]:2200/", Location("sftp", "/", "::1", 2200, "dcf"), "sftp://dcf@[::1]:2200/"),
        ("s3://agency-drops/mod/", Location("s3", "agency-drops/mod"), "s3://agency-drops/mod/"),
        ("gcs://agency-drops/mod", Location("gs", "agency-drops/mod"), "gs://agency-drops/mod/"),
        ("  /srv/drops/mod/ ", Location("file", "/srv/drops/mod"), "/srv/drops/mod/"),
        ("file:///srv/drops//mod", Location("file", "/srv/drops/mod"), "/srv/drops/mod/"),
        ("memory://drop/mod/", Location("memory", "drop/mod"), "memory://drop/mod/"),
    ],
)
def test_locations_parse_to_protocol_host_port_user_and_folder(text, location, shown):
    parsed = parse_location(text)
    assert parsed == location
    assert parsed.shown == shown
    assert parsed.url_of("sub/MOD_budget_FY2024.xlsx") == shown + "sub/MOD_budget_FY2024.xlsx"


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "the drop location is empty"),
        ("drops/mod", "is neither a URL nor an absolute local path"),
        ("http://example.org/mod/", "protocol 'http' is not supported"),
        ("sftp://drop.example/mod/", "names the user to log in as"),
        ("sftp://dcf@/mod/", "names its host"),
        ("sftp://dcf:hunter2@drop.example/mod/", "a password never sits in the YAML"),
        ("sftp://dcf@drop.example:99999/mod/", "is not a number from 1 to 65535"),
        ("sftp://dcf@drop.example:ssh/mod/", "is not a number from 1 to 65535"),
        ("sftp://dcf@drop.example:0/mod/", "is not a number from 1 to 65535"),
        ("sftp://dcf@drop.example/mod/../etc/", "may not contain '..'"),
        ("s3:///mod/", "names its bucket"),
        ("s3://AKIA@bucket/mod/", "names no user"),
        ("s3://bucket/mod/?versionId=3", "no query or fragment"),
        ("file://otherhost/srv/mod", "a folder on this machine"),
    ],
)
def test_a_location_that_cannot_be_used_says_why(text, message):
    with pytest.raises(ValueError) as exc:
        parse_location(text)
    assert message in str(exc.value)


def _yaml(tmp_path: Path, remote_value: object) -> Path:
    data = yaml.safe_load(yaml.safe_dump(MOD, allow_unicode=True))
    data["remote"] = remote_value
    path = tmp_path / "mod.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


SFTP = "sftp://dcf@drop.mod.example/outgoing/"


@pytest.mark.parametrize(
    "remote_value,key,message",
    [
        ({"url": SFTP}, "key 'remote'", "an sftp drop needs 'credentials'"),
        ({"url": SFTP, "credentials": "hunter2"}, "key 'remote.credentials'", "credentials never sit in the YAML"),
        ({"url": SFTP, "credentials": {"env": "A", "secret": "b"}}, "key 'remote.credentials'", "not both"),
        ({"url": SFTP, "credentials": {}}, "key 'remote.credentials'", "not both and not neither"),
        ({"url": SFTP, "credentials": {"env": "A", "holds": "token"}}, "key 'remote.credentials.holds'", "key_file"),
        ({"url": SFTP, "credentials": {"env": "A B"}}, "key 'remote.credentials.env'", "should match pattern"),
        ({"url": SFTP, "credentials": {"env": "A", "holds": "options"}}, "key 'remote'", "not options"),
        ({"url": "s3://b/mod/", "credentials": {"env": "A"}}, "key 'remote'", "hold 'options'"),
        ({"url": "s3://b/mod/", "known_hosts": "/k"}, "key 'remote'", "known_hosts is for sftp drops only"),
        ({"url": "/srv/mod/", "credentials": {"env": "A"}}, "key 'remote'", "takes no credentials"),
        ({"url": SFTP, "credentials": {"env": "A"}, "colour": "blue"}, "key 'remote.colour'", "Extra inputs"),
        ({"url": SFTP, "credentials": {"env": "A"}, "timeout_seconds": 0}, "key 'remote.timeout_seconds'", "greater"),
        ({"url": "sftp://dcf:pw@h/x/", "credentials": {"env": "A"}}, "key 'remote.url'", "never sits in the YAML"),
        ("ftp://drop/mod/", "key 'remote.url'", "protocol 'ftp' is not supported"),
        (42, "key 'remote'", "valid dictionary"),
    ],
)
def test_a_bad_remote_setting_names_the_file_and_the_key(tmp_path, remote_value, key, message):
    path = _yaml(tmp_path, remote_value)
    with pytest.raises(SourceConfigError) as exc:
        load_source(path)
    text = str(exc.value)
    assert text.startswith(f"{path}: ") and key in text and message in text, text


def test_a_remote_setting_loads_with_defaults_and_a_bare_string_is_the_url(tmp_path):
    full = load_source(_yaml(tmp_path, {"url": SFTP, "credentials": {"env": "DCF_MOD_SFTP_KEY"}})).remote
    assert full is not None
    assert (full.credentials.env, full.credentials.holds, full.credentials.setting) == (  # type: ignore[union-attr]
        "DCF_MOD_SFTP_KEY",
        "key_file",
        "environment variable DCF_MOD_SFTP_KEY",
    )
    assert full.timeout_seconds == 30.0 and full.known_hosts_file == Path("~/.ssh/known_hosts").expanduser()
    bare = load_source(_yaml(tmp_path, "s3://agency-drops/mod/")).remote
    assert bare == RemoteSpec(url="s3://agency-drops/mod/") and bare.location == Location("s3", "agency-drops/mod")
    secret = RemoteSpec.model_validate({"url": SFTP, "credentials": {"secret": "mod-sftp-key", "holds": "key"}})
    assert secret.credentials.setting == "Prefect Secret block 'mod-sftp-key'"  # type: ignore[union-attr]
    assert load_source(ROOT / "sources" / "mod.yaml").remote is None


@pytest.mark.parametrize(
    "info,token",
    [
        (
            {"name": "b/x.csv", "size": 3, "ETag": '"9b2cf535f27731c974343645a3985328"'},
            "ETag:9b2cf535f27731c974343645a3985328",
        ),
        ({"size": 3, "md5Hash": "abc==", "updated": "2026-01-01"}, "md5Hash:abc=="),
        ({"size": 3, "sha256": "00ff", "ETag": "e"}, "sha256:00ff"),
        ({"size": 5, "mtime": 1700000000.5}, "size:5 mtime:1700000000.5"),
        ({"size": 5, "LastModified": datetime(2026, 11, 30, 12, 0, tzinfo=UTC)}, "size:5 mtime:1796040000.0"),
        ({"size": 5}, "size:5 mtime:None"),
    ],
)
def test_the_change_token_is_the_protocols_checksum_else_size_and_mtime(info, token):
    assert change_token(info) == token


A = RemoteEntry("MOD_budget_FY2024.xlsx", 100, "size:100 mtime:1", "/drop/mod/MOD_budget_FY2024.xlsx", 1.0)


@pytest.mark.parametrize(
    "known,landed,why",
    [
        (None, None, "new"),
        (None, 100, "new"),
        ({"token": "size:100 mtime:1", "size": 100, "sha256": "x"}, 100, None),
        ({"token": "size:100 mtime:0", "size": 100, "sha256": "x"}, 100, "changed"),
        ({"token": "size:100 mtime:1", "size": 100, "sha256": "x"}, None, "missing here"),
        ({"token": "size:100 mtime:1", "size": 100, "sha256": "x"}, 99, "copy changed here"),
    ],
)
def test_a_file_is_downloaded_only_when_new_changed_or_missing_here(known, landed, why):
    assert needs_download(A, known, landed) == why


def test_the_plan_downloads_what_changed_removes_what_left_and_keeps_unlisted_folders():
    entries = [
        RemoteEntry("a.xlsx", 10, "t-a", "/d/a.xlsx"),
        RemoteEntry("b.xlsx", 10, "t-b2", "/d/b.xlsx"),
        RemoteEntry("c.csv", 10, "t-c", "/d/c.csv"),
        RemoteEntry("huge.xlsx", 10_000, "t-h", "/d/huge.xlsx"),
    ]
    listing = Listing(entries, refused=[("sub", "folder cannot be listed")], unlisted=["sub"])
    fetched = {
        "a.xlsx": {"token": "t-a", "size": 10},
        "b.xlsx": {"token": "t-b1", "size": 10},
        "gone.csv": {"token": "t-g", "size": 5},
        "sub/kept.csv": {"token": "t-k", "size": 5},
    }
    landed = {"a.xlsx": 10, "b.xlsx": 10, "gone.csv": 5, "sub/kept.csv": 5}
    assert plan(listing, fetched, landed, max_bytes=1_000) == Plan(
        download=[(entries[1], "changed"), (entries[2], "new")], remove=["gone.csv"], too_large=[entries[3]]
    )
    # the record of another drop: everything is new, and only the files the mirror put here are removed
    other = plan(listing, {}, {}, max_bytes=1_000, mirrored={"gone.csv", "a.xlsx", "sub/kept.csv"})
    assert [(e.rel, why) for e, why in other.download] == [("a.xlsx", "new"), ("b.xlsx", "new"), ("c.csv", "new")]
    assert other.remove == ["gone.csv"]


def test_names_a_server_should_never_send_are_not_safe_and_secrets_are_scrubbed():
    assert [remote.safe_name(n) for n in ("a.csv", "", ".", "..", "a/b", "a\x00b", "..a")] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert scrub("key hunter2 and hunter2", "hunter2") == "key *** and ***"
    assert scrub("{'key': 'AKIAX', 'secret': 'abcd1234'}", {"key": "AKIAX", "secret": "abcd1234"}) == (
        "{'key': '***', 'secret': '***'}"
    )
    assert scrub("short ab", "ab") == "short ab"  # a two-letter value would blank out words, not a secret


def _source(url: str, **remote_options) -> SourceConfig:
    return SourceConfig.model_validate({**MOD, "remote": {"url": url, **remote_options}})


def _drop_folder(drop: Path) -> Path:
    (drop / "sub").mkdir(parents=True)
    (drop / "MOD_programs.csv").write_bytes(b"Program Code,Program Name\nP1,One\n")
    (drop / "sub" / "MOD_budget_FY2024.xlsx").write_bytes(b"not really a workbook")
    return drop


@pytest.fixture
def memory_drop():
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/dcf-test-{uuid.uuid4().hex[:8]}/mod"
    fs.pipe(f"{root}/MOD_programs.csv", b"Program Code,Program Name\nP1,One\n")
    fs.pipe(f"{root}/sub/MOD_budget_FY2024.xlsx", b"not really a workbook")
    fs.pipe(f"{root}/~$MOD_budget_FY2024.xlsx", b"an Excel lock file")
    yield fs, root
    fs.rm(root.rsplit("/", 1)[0], recursive=True)


def test_the_mirror_downloads_once_then_only_what_changed_and_removes_what_left(memory_drop, tmp_path, caplog):
    fs, root = memory_drop
    src = _source(f"memory:/{root}/")
    folder = tmp_path / "inbox" / "mod"
    caplog.set_level(logging.INFO, logger="dcf.remote")

    assert remote.fetch(src, folder, FAST) == []
    landed = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert landed == [".dcf-remote.json", "MOD_programs.csv", "sub/MOD_budget_FY2024.xlsx"]
    assert (folder / "MOD_programs.csv").read_bytes() == fs.cat(f"{root}/MOD_programs.csv")
    record = remote.read_manifest(folder)
    assert record["location"] == f"memory:/{root}/"
    assert (
        record["files"]["MOD_programs.csv"]["sha256"] == hashlib.sha256(fs.cat(f"{root}/MOD_programs.csv")).hexdigest()
    )
    assert f"MOD: remote drop memory:/{root}/: 2 file(s), 2 downloaded, 0 removed (gone from the drop)" in caplog.text
    copies = lambda: {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("MOD_*")}  # noqa: E731
    before = copies()

    caplog.clear()
    assert remote.fetch(src, folder, FAST) == []  # nothing new: nothing downloaded, the copies untouched
    assert "2 file(s), 0 downloaded, 0 removed" in caplog.text
    assert copies() == before and len(before) == 2

    fs.pipe(f"{root}/MOD_programs.csv", b"Program Code,Program Name\nP1,One\nP2,Two\n")  # corrected by the agency
    fs.rm(f"{root}/sub/MOD_budget_FY2024.xlsx")
    (folder / "MOD_local_note.csv").write_bytes(b"put here by hand: not the mirror's to remove")
    caplog.clear()
    assert remote.fetch(src, folder, FAST) == []
    assert "1 file(s), 1 downloaded, 1 removed" in caplog.text
    assert (folder / "MOD_programs.csv").read_bytes().endswith(b"P2,Two\n")
    assert not (folder / "sub" / "MOD_budget_FY2024.xlsx").exists() and (folder / "MOD_local_note.csv").exists()
    assert sorted(remote.read_manifest(folder)["files"]) == ["MOD_programs.csv"]


def test_a_local_drop_refuses_links_leaving_it_and_fifos_like_the_inbox(tmp_path):
    drop = _drop_folder(tmp_path / "drop" / "mod")
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"not the agency's")
    os.symlink(outside, drop / "MOD_outside.csv")
    os.symlink(drop / "MOD_programs.csv", drop / "MOD_programs_link.csv")
    os.mkfifo(drop / "MOD_fifo.csv")
    folder = tmp_path / "inbox" / "mod"

    entries = remote.fetch(_source(str(drop)), folder, FAST)
    assert {e["file"]: (e["status"], e["message"]) for e in entries} == {
        "MOD/MOD_fifo.csv": ("refused", "not a regular file (a FIFO); not read"),
        "MOD/MOD_outside.csv": (
            "refused",
            "symbolic link that leads outside the agency's inbox folder; not read (copy the file in instead)",
        ),
    }
    assert (folder / "MOD_programs_link.csv").read_bytes() == (drop / "MOD_programs.csv").read_bytes()
    assert not (folder / "MOD_programs_link.csv").is_symlink() and not (folder / "MOD_outside.csv").exists()
    assert not (folder / "MOD_fifo.csv").exists()


def test_a_missing_drop_folder_or_credential_is_one_failed_entry_naming_location_and_setting(tmp_path, monkeypatch):
    folder = tmp_path / "inbox" / "mod"
    [missing] = remote.fetch(_source(str(tmp_path / "nowhere")), folder, FAST)
    assert missing == {
        "file": f"MOD/{tmp_path}/nowhere/",
        "status": "failed",
        "message": f"remote drop {tmp_path}/nowhere/: the drop folder does not exist there (or is not a folder); "
        "check the source's 'remote.url'; MOD's files were not fetched this night (those fetched before stay as "
        "they were)",
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "rows_skipped": 0,
    }
    assert not folder.exists()  # nothing listed: nothing written, nothing withdrawn

    monkeypatch.delenv("DCF_TEST_NO_SUCH_KEY", raising=False)
    src = _source(SFTP, credentials={"env": "DCF_TEST_NO_SUCH_KEY"})
    [unset] = remote.fetch(src, folder, FAST)
    assert unset["status"] == "failed" and unset["message"].startswith(
        "remote drop sftp://dcf@drop.mod.example:22/outgoing/: the environment variable DCF_TEST_NO_SUCH_KEY is not "
        "set (the source's 'remote.credentials' names it)"
    )
    monkeypatch.setenv("DCF_TEST_S3_OPTIONS", "key=AKIA, secret=abcd1234")
    [options] = remote.fetch(
        _source("s3://b/mod/", credentials={"env": "DCF_TEST_S3_OPTIONS", "holds": "options"}), folder, FAST
    )
    assert (
        "environment variable DCF_TEST_S3_OPTIONS does not hold a JSON object of storage options" in options["message"]
    )
    assert "abcd1234" not in options["message"]
    monkeypatch.setenv("DCF_TEST_SFTP_KEY", str(tmp_path / "no_key"))
    [nokey] = remote.fetch(_source(SFTP, credentials={"env": "DCF_TEST_SFTP_KEY"}), folder, FAST)
    assert "the private key file named by the environment variable DCF_TEST_SFTP_KEY does not exist" in nokey["message"]
    assert str(tmp_path / "no_key") not in nokey["message"]


def test_an_unreachable_sftp_drop_is_retried_then_reported_without_the_password(tmp_path, monkeypatch, caplog):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DCF_TEST_SFTP_PASSWORD", "correct-horse-battery")
    src = _source(
        f"sftp://dcf@127.0.0.1:{port}/drop/mod/", credentials={"env": "DCF_TEST_SFTP_PASSWORD", "holds": "password"}
    )
    caplog.set_level(logging.WARNING, logger="dcf.remote")
    [entry] = remote.fetch(src, tmp_path / "inbox" / "mod", FAST)
    assert entry["file"] == f"MOD/sftp://dcf@127.0.0.1:{port}/drop/mod/" and entry["status"] == "failed"
    assert entry["message"].startswith(
        f"remote drop sftp://dcf@127.0.0.1:{port}/drop/mod/: not reachable (ConnectionRefusedError: "
    )
    assert "after 2 tries over 0.1 s; MOD's files were not fetched this night" in entry["message"]
    assert f"MOD: remote drop sftp://dcf@127.0.0.1:{port}/drop/mod/: ConnectionRefusedError" in caplog.text
    assert "retrying in 0.1 s (try 2 of 2)" in caplog.text
    assert "correct-horse-battery" not in caplog.text + entry["message"]
    assert remote.drop_failures([entry, {"status": "refused"}]) == 1


def test_the_host_key_must_be_listed_in_known_hosts(tmp_path):
    import paramiko

    key, other = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    known = tmp_path / "known_hosts"
    policy = remote._known_hosts_only(known, 2222)
    with pytest.raises(remote._HostKeyRefused) as exc:
        policy.missing_host_key(None, "[127.0.0.1]:2222", key)
    assert str(exc.value).startswith(
        f"the host key of [127.0.0.1]:2222 is not in {known}: add it (ssh-keyscan -p 2222 127.0.0.1 >> {known}"
    )
    known.write_text(f"[127.0.0.1]:2222 {key.get_name()} {key.get_base64()}\n")
    policy.missing_host_key(None, "[127.0.0.1]:2222", key)  # listed: accepted
    with pytest.raises(remote._HostKeyRefused, match="does not match the one in"):
        policy.missing_host_key(None, "[127.0.0.1]:2222", other)


def test_lineage_names_the_remote_location_of_a_mirrored_file_only(tmp_path, monkeypatch):
    src = _source("sftp://dcf@drop.mod.example:2222/outgoing/", credentials={"env": "X"})
    folder = tmp_path / "inbox" / "mod"
    (folder / "sub").mkdir(parents=True)
    remote._write_manifest(folder, src.remote.location.shown, {"sub/MOD_budget_FY2024.xlsx": {"token": "t"}})  # type: ignore[union-attr]
    url = "sftp://dcf@drop.mod.example:2222/outgoing/sub/MOD_budget_FY2024.xlsx"
    assert remote.origins(folder, src) == {"sub/MOD_budget_FY2024.xlsx": url}  # read once a night, at discovery
    assert remote.origins(folder, SourceConfig.model_validate(MOD)) == {}  # no drop: nothing was fetched

    def never(folder: Path) -> dict:
        raise AssertionError("the mirror's record is read at discovery, not once per processed file")

    monkeypatch.setattr(remote, "read_manifest", never)

    def batch_of(path: Path, key: str, origin: str | None) -> tuple[FileBatch, SimpleNamespace]:
        task = SimpleNamespace(source=src, file_key=key, path=path, origin=origin)
        return FileBatch(key, "h", "c", "MOD", "budget", str(path), 1, None), task

    fetched = remote.with_origin(
        *batch_of(folder / "sub" / "MOD_budget_FY2024.xlsx", "MOD/sub/MOD_budget_FY2024.xlsx", url)
    )
    assert fetched.path == url
    by_hand = remote.with_origin(*batch_of(folder / "MOD_note.csv", "MOD/MOD_note.csv", None))  # not the mirror's
    assert by_hand.path == str(folder / "MOD_note.csv")


def test_the_readme_example_of_a_remote_drop_is_a_valid_setting():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Files delivered to a remote drop", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    spec = RemoteSpec.model_validate(yaml.safe_load(block)["remote"])
    assert spec.location == Location("sftp", "/outgoing/budget", "drop.mod.example", 22, "dcf")
    assert spec.credentials is not None and spec.credentials.setting == "environment variable DCF_MOD_SFTP_KEY"
    assert spec.known_hosts_file == Path("/etc/dcf/known_hosts") and spec.timeout_seconds == 30


def test_a_key_is_read_from_its_file_or_from_the_setting_itself_and_a_bad_one_names_the_setting(tmp_path):
    import io

    import paramiko

    from schemas.spec_remote import RemoteCredentials

    key = paramiko.RSAKey.generate(1024)
    text = io.StringIO()
    key.write_private_key(text)
    in_setting = remote._ssh_auth(RemoteCredentials(secret="mod-sftp-key", holds="key"), text.getvalue())
    assert in_setting["pkey"] == key
    key.write_private_key_file(str(tmp_path / "id_rsa"))
    assert remote._ssh_auth(RemoteCredentials(env="K"), str(tmp_path / "id_rsa"))["pkey"] == key
    assert remote._ssh_auth(RemoteCredentials(env="K", holds="password"), "pw") == {"password": "pw"}
    (tmp_path / "not_a_key").write_text("hello")
    with pytest.raises(remote.RemoteProblem) as exc:
        remote._ssh_auth(RemoteCredentials(env="K"), str(tmp_path / "not_a_key"))
    assert str(exc.value).startswith("the file named by the environment variable K is not a private key dcf can use (")
    with pytest.raises(remote.RemoteProblem, match="Prefect Secret block 'b' holds no private key dcf can use"):
        remote._ssh_auth(RemoteCredentials(secret="b", holds="key"), "not a key at all")
