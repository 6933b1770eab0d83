"""A history database that is not ours is refused before anything is written to it, and left
byte for byte as it was; ours (stamped, or written before the stamp existed) still opens."""

import sqlite3

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.tracking.history import APPLICATION_ID, History
from tests.factories import make_results


def _foreign_sqlite(path, app_id=0):
    """Another application's database that happens to have a `runs` table."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, title TEXT)")
    con.execute("INSERT INTO runs (title) VALUES ('my morning run')")
    if app_id:
        con.execute(f"PRAGMA application_id = {app_id}")
    con.commit()
    con.close()


def _commands(db, results):
    return [
        ["history", "add", str(results), "--db", str(db), "--commit", "abc"],
        ["history", "list", "--db", str(db)],
        ["history", "show", "latest", "--db", str(db)],
        ["history", "plot", "--db", str(db), "--out", str(db.parent / "trend.png")],
    ]


@pytest.mark.parametrize("kind", ["sqlite with a runs table", "sqlite with another application id", "not sqlite",
                                  "sqlite header then junk"])
def test_a_file_that_is_not_ours_is_refused_and_left_untouched(tmp_path, kind):
    db = tmp_path / "other.db"
    if kind == "sqlite with a runs table":
        _foreign_sqlite(db)
    elif kind == "sqlite with another application id":
        _foreign_sqlite(db, app_id=0x12345678)
    elif kind == "not sqlite":
        db.write_bytes(b"PK\x03\x04 a zip, a spreadsheet, anything" * 50)
    else:
        db.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    before = db.read_bytes()
    results = tmp_path / "results.json"
    R.save(make_results(), results)
    for argv in _commands(db, results):
        r = CliRunner().invoke(main, argv)
        assert r.exit_code == 2, (argv, r.output)
        assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
        assert "not a usable gptoss history database" in r.stderr and "untouched" in r.stderr
        assert db.read_bytes() == before, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db", "results.json"]  # no -wal, -shm, png


def test_a_new_database_is_stamped_as_ours(tmp_path):
    db = tmp_path / "h.sqlite"
    History(db).close()
    with open(db, "rb") as f:
        header = f.read(100)
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID


def test_a_database_written_before_the_stamp_still_opens_and_gets_stamped(tmp_path):
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        h.add(make_results())
    con = sqlite3.connect(db)
    con.execute("PRAGMA application_id = 0")
    con.commit()
    con.close()
    with History(db, create=False) as h:
        assert [r.run_id for r in h.runs()] == ["run-base"]
        assert h.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


@pytest.mark.parametrize("kind", ["empty file", "empty sqlite database"])
def test_an_empty_file_or_database_becomes_a_history(tmp_path, kind):
    db = tmp_path / "h.sqlite"
    if kind == "empty file":
        db.write_bytes(b"")
    else:
        sqlite3.connect(db).execute("VACUUM").connection.close()
    with History(db) as h:
        h.add(make_results())
        assert len(h.runs()) == 1
