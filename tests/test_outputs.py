"""What a conversion may write, and what it must leave alone (issue 11).

Output paths are checked before anything is read; files in a dataset folder that the
dataset did not write survive every conversion; the lock and the scratch folders are
opened without following links and matched by their literal names; a private
conversion's rejects file holds no number or body; a connection sees the current version.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import smsanalytics
import smsanalytics.privacy
from smsanalytics import dataset as ds
from smsanalytics.errors import OutputPathError
from smsanalytics.paths import check_output_path

from .conftest import DATA, ROOT, assert_one_line_error, command, run, run_process

PAYLOAD = DATA / "webhook-payload.json"


def _record(sid: str, sender: str = "+33639980042", body: str = "Hello") -> str:
    return json.dumps(
        {
            "sid": sid,
            "from": sender,
            "to": "+33639980044",
            "body": {"text": body},
            "created": "2025-03-01T10:00:00Z",
            "updated": "2025-03-01T10:00:00Z",
        }
    )


@pytest.fixture
def archive(write) -> Path:
    """A JSON Lines archive: two messages and one broken line."""
    return write("in.jsonl", f"{_record('a')}\n{_record('b')}\nnot json\n")


# -- output paths ------------------------------------------------------------------------


def test_rejects_file_that_is_the_input_is_refused_and_the_input_kept(archive, tmp_path):
    before = archive.read_bytes()
    r = run("convert", archive, "--out", tmp_path / "ds", "--rejects", archive)
    assert_one_line_error(r, "is one of the inputs")
    assert archive.read_bytes() == before
    assert not (tmp_path / "ds").exists()


def test_rejects_file_that_is_a_hard_link_of_the_input_is_refused(archive, tmp_path):
    os.link(archive, tmp_path / "other-name.jsonl")
    with pytest.raises(OutputPathError, match="one of the inputs"):
        smsanalytics.convert([archive], tmp_path / "ds", rejects=tmp_path / "other-name.jsonl")
    assert b"not json" in archive.read_bytes()


def _convert_from_stdin(stdin: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``smsanalytics convert - ARGS < stdin``, as a shell runs it: a real file on fd 0."""
    with stdin.open("rb") as fh:
        return run_process("convert", "-", *args, stdin=fh)


@pytest.mark.parametrize("which", ["default rejects", "named rejects", "hard link"])
def test_stdin_that_is_the_rejects_file_is_refused_and_kept(archive, tmp_path, which):
    out = tmp_path / "ds"
    assert run("convert", archive, "--out", out, "-q").exit_code == 0
    rejects = tmp_path / "ds.rejects.jsonl"
    before = rejects.read_bytes()
    assert b"not json" in before
    stdin, args = rejects, []
    if which == "named rejects":
        args = ["--rejects", rejects]
    elif which == "hard link":  # stdin read through another name: still the same file
        stdin = tmp_path / "other-name.jsonl"
        os.link(rejects, stdin)
    r = _convert_from_stdin(stdin, "--out", out, *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        f"smsanalytics: error: {rejects}: is standard input (-) of this command; "
        "choose another output"
    ]
    assert rejects.read_bytes() == before
    assert len(smsanalytics.read_dataset(out)) == 2


def test_stdin_from_another_file_still_converts(archive, tmp_path):
    out = tmp_path / "ds"
    assert run("convert", archive, "--out", out, "-q").exit_code == 0
    r = _convert_from_stdin(archive, "--out", tmp_path / "ds2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 2


@pytest.fixture
def device(tmp_path) -> Path:
    """A null device of our own: a test of code that replaces devices never meets the
    system's /dev/null."""
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device here (not root)")
    return path


def test_rejects_to_a_device_is_refused_and_the_device_left(archive, tmp_path, device):
    r = run("convert", archive, "--out", tmp_path / "ds", "--rejects", device)
    assert_one_line_error(r, "is a device")
    assert device.is_char_device()


def test_rejects_to_a_fifo_is_refused(archive, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = run("convert", archive, "--out", tmp_path / "ds", "--rejects", fifo)
    assert_one_line_error(r, "named pipe")


def test_rejects_through_a_symlink_is_refused_and_its_target_untouched(archive, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link.jsonl").symlink_to(victim)
    r = run("convert", archive, "--out", tmp_path / "ds", "--rejects", tmp_path / "link.jsonl")
    assert_one_line_error(r, "symbolic link")
    assert victim.read_text() == "precious"
    assert (tmp_path / "link.jsonl").is_symlink()


def test_an_existing_file_that_is_not_a_rejects_file_is_refused(archive, write, tmp_path):
    notes = write("notes.txt", "my notes\n")
    with pytest.raises(OutputPathError, match="not a rejects file"):
        smsanalytics.convert([archive], tmp_path / "ds", rejects=notes, quiet=True)
    assert notes.read_text() == "my notes\n"


def test_an_earlier_rejects_file_is_replaced(archive, tmp_path):
    rejects = tmp_path / "r.jsonl"
    smsanalytics.convert([archive], tmp_path / "ds", rejects=rejects, quiet=True)
    smsanalytics.convert([archive], tmp_path / "ds", rejects=rejects, quiet=True)
    (line,) = rejects.read_text().splitlines()
    assert json.loads(line)["source_line"] == 3


def test_rejects_inside_the_dataset_directory_is_refused(archive, tmp_path):
    with pytest.raises(OutputPathError, match="inside the dataset"):
        smsanalytics.convert([archive], tmp_path / "ds", rejects=tmp_path / "ds" / "r.jsonl")


def test_a_dataset_that_is_a_symlink_is_refused(archive, tmp_path):
    real = tmp_path / "real"
    smsanalytics.convert([archive], real, quiet=True)
    (tmp_path / "ds").symlink_to(real)
    r = run("convert", archive, "--out", tmp_path / "ds")
    assert_one_line_error(r, "symbolic link", str(real))
    assert (tmp_path / "ds").is_symlink()


def test_a_dataset_path_that_is_a_file_is_refused_and_kept(archive, write):
    notes = write("notes", "mine")
    with pytest.raises(OutputPathError, match="not a directory"):
        smsanalytics.convert([archive], notes)
    assert notes.read_text() == "mine"


def test_a_dataset_that_is_an_input_folder_is_refused(tmp_path, write):
    write("arch/in.jsonl", _record("a") + "\n")
    with pytest.raises(OutputPathError, match="one of the inputs"):
        smsanalytics.convert([tmp_path / "arch"], tmp_path / "arch")


@pytest.mark.parametrize("kind", ["file", "rejects", "directory", "dataset"])
def test_check_output_path_refuses_devices_and_links_of_every_kind(tmp_path, kind, device):
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for bad in (device, tmp_path / "link"):
        with pytest.raises(OutputPathError):
            check_output_path(bad, kind=kind)
    assert check_output_path(tmp_path / "new", kind=kind) == tmp_path / "new"


def test_check_output_path_lets_the_caller_say_what_is_ours(tmp_path):
    page = tmp_path / "report.html"
    page.write_text("<p>someone else's page</p>")
    with pytest.raises(OutputPathError, match="not written by smsanalytics"):
        check_output_path(page, ours=lambda p: "smsanalytics" in p.read_text())
    assert check_output_path(page) == page


# -- the dataset inside the folder of archives --------------------------------------------


def test_a_folder_holding_the_output_does_not_read_it_back(tmp_path, write):
    arch = tmp_path / "arch"
    write("arch/in.jsonl", f"{_record('a')}\nbroken\n")
    first = smsanalytics.convert([arch], arch / "ds", quiet=True)
    (arch / "ds" / "NOTES.txt").write_text(_record("notes") + "\n")
    again = smsanalytics.convert([arch], arch / "ds", quiet=True)
    assert (first.files, first.records, first.rejected) == (1, 2, 1)
    assert (again.files, again.records, again.rejected, again.written) == (1, 2, 1, 0)


def test_pseudonymize_into_a_symlink_is_refused(archive, tmp_path):
    smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    key = tmp_path / "k.key"
    smsanalytics.privacy.generate_key(key)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "anon").symlink_to(tmp_path / "elsewhere")
    r = run("pseudonymize", tmp_path / "ds", "--out", tmp_path / "anon", "--key-file", key)
    assert_one_line_error(r, "symbolic link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


# -- files the dataset did not write ------------------------------------------------------


def _plant(out: Path) -> dict[str, bytes]:
    """Put the user's things into a dataset folder; return what each file holds."""
    month = next(p for p in out.iterdir() if p.is_dir())
    things = {
        "NOTES.txt": b"my notes\n",
        "more.jsonl": (_record("copied") + "\n").encode(),
        "ds.rejects.jsonl": b"",
        "docs/readme.md": b"# about this data\n",
        f"{month.name}/checked.txt": b"checked by Ann\n",
        ".hidden": b"dot file\n",
    }
    for rel, data in things.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    (out / "link-to-notes").symlink_to("NOTES.txt")
    (out / "empty-folder").mkdir()
    return things


@pytest.mark.parametrize("overwrite", [False, True], ids=["add", "overwrite"])
def test_files_the_dataset_did_not_write_survive_a_conversion(tmp_path, write, overwrite):
    out = tmp_path / "ds"
    smsanalytics.convert([write("a.jsonl", _record("a") + "\n")], out, quiet=True)
    things = _plant(out)
    s = smsanalytics.convert(
        [write("b.jsonl", _record("b") + "\n")], out, quiet=True, overwrite=overwrite
    )
    assert s.written == 1
    for rel, data in things.items():
        assert (out / rel).read_bytes() == data, rel
    assert os.readlink(out / "link-to-notes") == "NOTES.txt"
    assert (out / "empty-folder").is_dir()
    sids = set(smsanalytics.read_dataset(out)["sid"])
    assert sids == ({"b"} if overwrite else {"a", "b"})


def test_a_file_added_during_the_conversion_survives_the_swap(tmp_path, write, monkeypatch):
    out = tmp_path / "ds"
    smsanalytics.convert([write("a.jsonl", _record("a") + "\n")], out, quiet=True)
    real_exchange = ds._exchange

    def exchange_after_a_late_file(a: Path, b: Path) -> bool:
        (out / "late.txt").write_text("written while converting")
        return real_exchange(a, b)

    monkeypatch.setattr(ds, "_exchange", exchange_after_a_late_file)
    smsanalytics.convert([write("b.jsonl", _record("b") + "\n")], out, quiet=True)
    assert (out / "late.txt").read_text() == "written while converting"


# -- the lock and the scratch folders ------------------------------------------------------


@pytest.mark.parametrize("how", ["symlink", "hard link", "fifo"])
def test_the_lock_never_writes_through_a_link(archive, tmp_path, how):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = tmp_path / ".ds.lock"
    if how == "symlink":
        lock.symlink_to(victim)
    elif how == "hard link":
        os.link(victim, lock)
    else:  # opening a FIFO could hang a run
        os.mkfifo(lock)
    r = run("convert", archive, "--out", tmp_path / "ds")
    assert_one_line_error(r, "lock file", "remove")
    assert victim.read_text() == "precious"


def _scratch(parent: Path, name: str, kind: str = "stage") -> Path:
    path = parent / f".{name}.{kind}-{'0' * 32}"
    path.mkdir()
    (path / "keys.parquet").write_bytes(b"in use")
    return path


@pytest.mark.parametrize("name", ["*", "ds[1]", "?s", "d", "ds.stage-x"])
def test_cleanup_matches_its_own_names_literally(archive, tmp_path, name):
    others = [_scratch(tmp_path, n) for n in ("ds", "ds1", "other", "ds.stage-x.x")]
    others = [o for o in others if not o.name.startswith(f".{name}.stage-")]
    own = [_scratch(tmp_path, name), _scratch(tmp_path, name, "version")]
    smsanalytics.convert([archive], tmp_path / name, quiet=True)
    assert all(o.is_dir() for o in others), name
    assert not any(o.exists() for o in own), name


def test_cleanup_never_follows_a_link_named_like_a_leftover(archive, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("mine")
    (tmp_path / f".ds.stage-{'0' * 32}").symlink_to(keep)
    smsanalytics.convert([archive], tmp_path / "ds", quiet=True)
    assert (keep / "data.txt").read_text() == "mine"


# -- a private conversion writes no number and no body anywhere ---------------------------

_NUMBERS = st.from_regex(r"\+33[67][0-9]{8}", fullmatch=True)
# A digit in each: a body that is an opt-out keyword (STOP) stays, by design, as `keyword`.
_BODIES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                  min_size=12, max_size=30).map(lambda t: t + "7")  # fmt: skip


def _hostile_records(sender: str, body: str, i: int) -> list[str]:
    """Good and bad records that carry `sender` and `body` in every place they can go."""
    good = {"sid": f"s{i}", "from": sender, "to": sender, "body": {"text": body},
            "created": "2025-03-01T10:00:00Z"}  # fmt: skip
    bad_fields = [
        {**good, "sid": f"p{i}", "parts": sender},  # a number where a count goes
        {**good, "sid": f"c{i}", "cost": body},
        {**good, "sid": f"o{i}", "from": {"number": sender, "note": body}},
        {**good, "sid": f"t{i}", "created": f"{sender} {body}"},
        {"id": "e", "type": f"{sender}.{body}", "payload": good},  # another event type
        {"to": sender, "body": {"text": body}},  # no sid, no sender
    ]
    return [json.dumps(good), *map(json.dumps, bad_fields), f"{sender} said {body} {{broken"]


def _all_text(out: Path, rejects: Path, summary: object) -> str:
    table = ds.read_dataset_table(out)
    values = [str(v) for col in table.columns for v in col.to_pylist() if v is not None]
    files = [p for p in out.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    return "\n".join([*values, rejects.read_text(), str(summary),
                      *(p.read_text(errors="replace") for p in files)])  # fmt: skip


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.lists(st.tuples(_NUMBERS, _BODIES), min_size=1, max_size=3),
       st.sampled_from(["jsonl", "json", "yaml"]))  # fmt: skip
def test_a_private_conversion_writes_no_number_and_no_body(tmp_path_factory, people, container):
    tmp = tmp_path_factory.mktemp("private")
    records = [r for i, (n, b) in enumerate(people) for r in _hostile_records(n, b, i)]
    if container == "jsonl":
        (tmp / "in.jsonl").write_text("\n".join(records) + "\n")
    elif container == "json":  # the broken line is one broken element: the rest of the array
        (tmp / "in.json").write_text("[" + ",\n".join(records[:-1]) + ",\n" + records[-1] + "]")
    else:
        docs = [r if r.startswith("{") else f"text: {r}" for r in records]
        (tmp / "in.yaml").write_text("\n---\n".join(docs) + "\n")
    key = tmp / "k.key"
    smsanalytics.privacy.generate_key(key)
    s = smsanalytics.convert(
        [tmp / f"in.{container}"], tmp / "ds", rejects=tmp / "r.jsonl", quiet=True,
        pseudonymize_key=smsanalytics.privacy.load_key(key), redact_bodies=True,
        pseudonymize_recipients=True,
    )  # fmt: skip
    assert s.balanced and s.rejected >= 1
    text = _all_text(tmp / "ds", tmp / "r.jsonl", s)
    for number, body in people:
        assert number not in text and number[1:] not in text
        assert body not in text
    for line in (tmp / "r.jsonl").read_text().splitlines():  # still says where and why
        record = json.loads(line)
        assert record["source_line"] >= 1 and record["reason"] and record["raw"] is None


# -- a connection sees the current version ------------------------------------------------


@pytest.mark.parametrize("name", ["ds", "ds[1]", "*"])
def test_a_connection_sees_the_dataset_after_later_conversions(tmp_path, write, name):
    out = tmp_path / name
    smsanalytics.convert([write("a.jsonl", _record("a") + "\n")], out, quiet=True)
    con = smsanalytics.connect(out)
    smsanalytics.convert([write("b.jsonl", _record("b") + "\n")], out, quiet=True)
    assert sorted(con.sql("SELECT sid FROM messages").fetchall()) == [("a",), ("b",)]
    smsanalytics.convert([tmp_path / "b.jsonl"], out, quiet=True, overwrite=True)  # new files
    assert con.sql("SELECT sid FROM messages").fetchall() == [("b",)]


def test_a_connection_to_an_empty_dataset_sees_its_first_rows(tmp_path, write):
    out = tmp_path / "ds"
    smsanalytics.convert([write("bad.jsonl", "not json\n")], out, quiet=True)
    con = smsanalytics.connect(out)
    assert con.sql("SELECT count(*), typeof(any_value(cost_cents)) FROM messages").fetchall() == [
        (0, "DECIMAL(18,6)")
    ]
    smsanalytics.convert([write("a.jsonl", _record("a") + "\n")], out, quiet=True)
    assert con.sql("SELECT sid FROM messages").fetchall() == [("a",)]


def test_a_folder_that_is_not_a_dataset_is_refused_without_a_trace(archive, write, tmp_path):
    write("docs/letter.txt", "dear")
    r = run("convert", archive, "--out", tmp_path / "docs")
    assert_one_line_error(r, "not a smsanalytics dataset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "in.jsonl"]
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["letter.txt"]


@pytest.fixture
def umask():
    """Set the process's umask for the test (restored after)."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of `root` and of every folder and file under it."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in paths}


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_a_dataset_is_created_with_the_users_umask_like_its_files(archive, tmp_path, umask,
                                                                 mask):
    # A dataset folder readable by its owner only (0700, the mode of the private folder it
    # was built in) kept a group's tools or a Spark service out, while the files inside
    # it followed the umask.
    umask(mask)
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    assert _modes(out)[out.name] == 0o777 & ~mask
    folders = {k: v for k, v in _modes(out).items() if (tmp_path / k).is_dir()}
    assert set(folders.values()) == {0o777 & ~mask}, folders
    files = {k: v for k, v in _modes(out).items() if (tmp_path / k).is_file()}
    assert files and set(files.values()) == {0o666 & ~mask}, files
    smsanalytics.convert([archive], out, quiet=True, overwrite=True)  # a new version too
    assert _modes(out)[out.name] == 0o777 & ~mask


def test_a_pseudonymised_copy_is_created_with_the_users_umask(archive, tmp_path, umask):
    umask(0o027)
    src, out, key = tmp_path / "ds", tmp_path / "private", tmp_path / "key"
    smsanalytics.convert([archive], src, quiet=True)
    smsanalytics.privacy.generate_key(key)
    smsanalytics.privacy.pseudonymize_dataset(src, out, key=smsanalytics.privacy.load_key(key))
    assert _modes(out)[out.name] == 0o750


@pytest.mark.parametrize("mode", [0o750, 0o2770, 0o700])
def test_a_new_version_keeps_the_mode_given_to_the_dataset_folder(archive, write, tmp_path,
                                                                  umask, mode):
    # Each conversion swaps in a new folder: a mode set on the old one (a group let in,
    # setgid so that new files take the folder's group) must survive the nightly run.
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    out.chmod(mode)
    smsanalytics.convert([write("more.jsonl", _record("c") + "\n")], out, quiet=True)
    assert stat.S_IMODE(out.stat().st_mode) == mode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a folder another group needs root")
def test_a_new_version_keeps_the_group_of_the_dataset_folder(archive, write, tmp_path):
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    os.chown(out, -1, 4321)
    smsanalytics.convert([write("more.jsonl", _record("c") + "\n")], out, quiet=True)
    assert out.stat().st_gid == 4321


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a folder another group needs root")
def test_a_setgid_dataset_folder_gives_its_group_to_the_new_versions_files(archive, write,
                                                                          tmp_path, umask):
    # chgrp analysts + chmod 2750 under umask 027: the month folders and files of each new
    # version must take the folder's group (what setgid is for), or the group is locked out
    # of the data while let into the folder. The version was built in a plain 0700 folder
    # of the user's group and given the group only at the end: too late for its files.
    umask(0o027)
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    os.chown(out, -1, 4321)
    out.chmod(0o2750)
    smsanalytics.convert([archive], out, quiet=True, overwrite=True)  # every file new
    groups = {str(p.relative_to(out)): p.stat().st_gid for p in [out, *out.rglob("*")]}
    assert set(groups.values()) == {4321}, groups
    assert stat.S_IMODE(out.stat().st_mode) == 0o2750


@pytest.mark.parametrize("mode", [0o2750, 0o755, 0o700])
def test_a_commit_cut_after_the_swap_keeps_the_folders_mode(archive, write, tmp_path,
                                                            monkeypatch, mode):
    # kill -9 (here an exception) between the swap and the end of commit_version left the
    # new version with the private 0700 it was built in: the group shut out for good, and
    # the next conversion carried 0700 on as the mode "given" to the dataset.
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    out.chmod(mode)
    publish, calls = ds._publish_manifest, []

    def cut(path: Path) -> None:  # the first call is clean_leftovers', before the version
        calls.append(path)
        if len(calls) > 1:
            raise KeyboardInterrupt
        publish(path)

    monkeypatch.setattr(ds, "_publish_manifest", cut)
    with pytest.raises(KeyboardInterrupt):
        smsanalytics.convert([write("more.jsonl", _record("c") + "\n")], out, quiet=True)
    assert (out / ds.MANIFEST_NAME).is_file()  # the new version, swapped in
    assert stat.S_IMODE(out.stat().st_mode) == mode


def _unprivileged() -> list[str] | None:
    """A prefix running a command as root without the capabilities that bypass file
    permissions (what any other user has), or None if that cannot be done here."""
    import shutil

    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    return ["setpriv", "--inh-caps=-all",
            "--bounding-set=-dac_override,-dac_read_search,-fowner,-fsetid,-chown"]


@pytest.mark.skipif(_unprivileged() is None, reason="needs root and setpriv to drop its rights")
@pytest.mark.parametrize("mode", [0o555, 0o500])
def test_a_read_only_dataset_folder_is_replaced_without_leftovers(archive, tmp_path, mode):
    # A user's own dataset folder made read-only (chmod 555): the conversion swapped the new
    # version in, but could not delete the old one (its folder refuses the removal of its
    # entries), leaving a hidden .ds.version-* copy of the whole dataset that every later
    # run failed to clean up too.
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    (out / "month=2025-03").chmod(0o555)
    out.chmod(mode)
    prefix = _unprivileged()
    assert prefix is not None
    for _ in range(2):
        proc = subprocess.run([*prefix, *command("convert", archive, "--out", out, "--overwrite",
                                                 "--quiet")],
                              capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [".ds.lock", ".ds.smsanalytics.json", "ds", "ds.rejects.jsonl", "in.jsonl"])


_COMMIT_STEPS = ["_carry_foreign", "_exchange", "_publish_manifest", "_remove_tree",
                 "_fsync_dir", None]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.integers(0, 0o7777), st.sampled_from([0, 4321]), st.sampled_from(_COMMIT_STEPS))
def test_a_commit_cut_anywhere_is_never_more_open_than_the_folder_it_replaces(
        tmp_path_factory, monkeypatch, mode, group, step):
    # The class of the findings above: whatever mode and group the dataset folder has, and
    # wherever commit_version is cut (Ctrl-C, kill -9), the dataset folder and any version
    # left beside it are never open to anyone the old folder kept out, once swapped in the
    # dataset folder lets in whom the old one let in (a cut just after the swap left 0700
    # for good), and a commit that ends gives exactly the old folder's mode and group.
    tmp = tmp_path_factory.mktemp("commit")
    out = tmp / "ds"
    (out / "month=2025-03").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    version = ds.new_version_dir(out)
    ds.write_manifest(version, {"partition_by": "month"})
    if os.geteuid() == 0:
        os.chown(out, -1, group)
    out.chmod(mode)
    if step is not None:
        def cut(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(ds, step, cut)
    try:
        ds.commit_version(version, out)
    except KeyboardInterrupt:
        assert step is not None
    finally:
        monkeypatch.undo()
    for folder in [out, *(p for p in tmp.iterdir() if p.name.startswith(".ds.version-"))]:
        st_ = folder.stat()
        assert stat.S_IMODE(st_.st_mode) & 0o077 & ~mode == 0, (folder, oct(st_.st_mode))
    if (out / ds.MANIFEST_NAME).exists() or ds.manifest_path(out).exists():  # swapped in
        assert stat.S_IMODE(out.stat().st_mode) & ~0o700 == mode & ~0o700
        assert os.geteuid() != 0 or out.stat().st_gid == group
    else:
        assert stat.S_IMODE(out.stat().st_mode) == mode
    if step is None:
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert out.stat().st_gid == (group if os.geteuid() == 0 else out.stat().st_gid)
        assert (out / "notes.txt").read_text() == "mine"
    for p in tmp.iterdir():
        if p.is_dir():
            p.chmod(0o700)


@pytest.mark.parametrize(("folder", "given", "expected"), [
    (0o700, None, 0o600),    # a private dataset: its rejects (raw message text) private too
    (0o750, None, 0o640),
    (0o2750, None, 0o640),
    (0o755, 0o600, 0o600),   # a chmod given to the rejects file outlives the next run
    (0o755, None, 0o644),
])
def test_the_rejects_file_is_never_more_open_than_the_dataset_folder(archive, write, tmp_path,
                                                                    umask, folder, given,
                                                                    expected):
    # The rejects file holds the raw text of the broken records, beside the dataset: it was
    # written 0644 (the umask) by every run, whatever mode the user gave the dataset folder
    # or the rejects file, so that a 0700 dataset's messages were readable by all there.
    out, rejects = tmp_path / "ds", tmp_path / "ds.rejects.jsonl"
    smsanalytics.convert([archive], out, quiet=True)
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o644  # a new dataset: the umask
    out.chmod(folder)
    if given is not None:
        rejects.chmod(given)
    smsanalytics.convert([archive], out, quiet=True, overwrite=True)
    assert stat.S_IMODE(rejects.stat().st_mode) == expected
    assert "not json" in rejects.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".ds.lock", ".ds.smsanalytics.json", "ds", "ds.rejects.jsonl", "in.jsonl"])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="giving a folder another group needs root")
def test_the_rejects_file_takes_the_group_of_the_dataset_folder(archive, tmp_path, umask):
    # chgrp analysts + chmod 2750 on the dataset: its rejects file, made 0640 (others are
    # kept out of the folder), kept the user's own group: the analysts lost the rejects
    # they could read before (0644).
    out, rejects = tmp_path / "ds", tmp_path / "ds.rejects.jsonl"
    smsanalytics.convert([archive], out, quiet=True)
    os.chown(out, -1, 4321)
    out.chmod(0o2750)
    smsanalytics.convert([archive], out, quiet=True, overwrite=True)
    assert (stat.S_IMODE(rejects.stat().st_mode), rejects.stat().st_gid) == (0o640, 4321)


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o555, 0o2711])
def test_a_users_folder_inside_the_dataset_keeps_its_mode(archive, tmp_path, umask, mode):
    # A folder of the user's inside the dataset (notes, exports) was recreated in each new
    # version with the umask's 0755: a private folder opened to all, its files with it.
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    private = out / "private" / "deeper"
    private.mkdir(parents=True)
    (private / "notes.txt").write_text("mine")
    private.chmod(mode)
    (out / "private").chmod(mode)
    smsanalytics.convert([archive], out, quiet=True, overwrite=True)
    for folder in (out / "private", private):
        assert stat.S_IMODE(folder.stat().st_mode) == mode, folder
    assert (private / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(_unprivileged() is None, reason="needs root and setpriv to drop its rights")
def test_a_users_unreadable_folder_inside_the_dataset_stops_the_conversion(archive, tmp_path):
    # A folder of the user's inside the dataset that the conversion cannot read (chmod 000)
    # came out empty in the new version, its files left in a hidden .ds.version-* folder
    # that the next run partly deleted: refused instead, the dataset left as it is.
    out = tmp_path / "ds"
    smsanalytics.convert([archive], out, quiet=True)
    (out / "private").mkdir()
    (out / "private" / "notes.txt").write_text("mine")
    (out / "private").chmod(0)
    prefix = _unprivileged()
    assert prefix is not None
    cmd = [*prefix, *command("convert", archive, "--out", out, "--overwrite", "--quiet")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT)
    (out / "private").chmod(0o700)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "private" in proc.stderr, proc.stderr
    assert (out / "private" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".ds.lock", ".ds.smsanalytics.json", "ds", "ds.rejects.jsonl", "in.jsonl"])


def test_a_dataset_is_its_folder_and_two_hidden_files_beside_it(archive, tmp_path):
    # The README: "To delete a dataset, remove the folder and the two hidden files beside
    # it" (and the rejects file, an output of its own). Anything else left beside it after
    # a conversion would be a leftover that deletion misses.
    out = tmp_path / "ds"
    for overwrite in (False, True):  # a first version, then a replacing one
        smsanalytics.convert([archive], out, quiet=True, overwrite=overwrite)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [archive.name, "ds", "ds.rejects.jsonl", ".ds.smsanalytics.json", ".ds.lock"])
