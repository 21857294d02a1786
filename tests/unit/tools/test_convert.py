"""CSV tables to event logs (pipeline.tools.convert and ``pipeline convert``): the shapes of
public logs (a ratings table in epoch seconds, a shop's event table with its own type
names), every row either an event of the contract or a reported reason, and a converted
log that ``pipeline evaluate`` replays."""

from __future__ import annotations

import csv
import io
import json

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli.convert import convert
from pipeline.cli.data import evaluate_command
from pipeline.core.events import event_from_dict
from pipeline.tools.convert import CsvMapping, convert_rows, parse_type_map
from pipeline.tools.synthetic import SyntheticWorld, profile

RATINGS = """userId,movieId,rating,timestamp
1,31,2.5,1260759144
1,1029,3.0,1260759179
2,10,4,835355493.5
"""

SHOP = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,addtocart,248676,
1433221999827,111016,transaction,318965,1
1433221955914,483717,click,253185,
1433221337106,951259,wishlist,367447,
"""


def rows(text: str) -> csv.DictReader:
    return csv.DictReader(io.StringIO(text))


def test_a_ratings_table_in_epoch_seconds() -> None:
    mapping = CsvMapping(
        user="userId", item="movieId", time_unit="s", event_type="rate", value="rating"
    )
    converted = list(convert_rows(rows(RATINGS), mapping))
    assert converted == [
        (2, {"event_id": "row-2", "type": "rate", "user_id": "1", "item_id": "31",
             "timestamp": 1260759144000, "value": 2.5}),
        (3, {"event_id": "row-3", "type": "rate", "user_id": "1", "item_id": "1029",
             "timestamp": 1260759179000, "value": 3}),
        (4, {"event_id": "row-4", "type": "rate", "user_id": "2", "item_id": "10",
             "timestamp": 835355493500, "value": 4}),
    ]  # fmt: skip
    for _, event in converted:
        event_from_dict(event)


def test_a_shop_table_with_its_own_type_names() -> None:
    """Named types are mapped, an event type's own name passes, an unmapped name is a
    reported row; the transaction id column is not needed."""
    mapping = CsvMapping(
        user="visitorid",
        item="itemid",
        type_column="event",
        type_map=parse_type_map(["view=click", "addtocart=basket", "transaction=buy"]),
    )
    converted = dict(convert_rows(rows(SHOP), mapping))
    assert [converted[line]["type"] for line in (2, 3, 4, 5)] == [  # type: ignore[index]
        "click",
        "basket",
        "buy",
        "click",
    ]
    assert converted[2]["timestamp"] == 1433221332117  # type: ignore[index]
    assert converted[6] == "type 'wishlist' is not mapped to an event type (--type-map)"


@pytest.mark.parametrize(
    ("line", "unit", "reason"),
    [
        ("u1,i1,", "ms", "column 'timestamp' is empty or missing"),
        ("u1,,1433221332117", "ms", "column 'item_id' is empty or missing"),
        ("u1,i1", "ms", "column 'timestamp' is empty or missing"),
        ("u1,i1,yesterday", "ms", "column 'timestamp' is not a number: 'yesterday'"),
        ("u1,i1,nan", "ms", "column 'timestamp' is not a number: 'nan'"),
        ("u1,i1,1e999", "ms", "column 'timestamp' is not a finite number"),
        ("u1,i1,1_433_221_332_117", "ms", "column 'timestamp' is not a number"),
        ("u1,i1,1433221332117,extra", "ms", "4 fields, the header has 3"),
        ("u1,i1,1433221332", "ms", "timestamp must lie between 1973 and 2100"),
        ("u1,i1,2015-06-02T05:02:12", "iso", "timestamp needs a UTC offset"),
        ("u 1,i1,1433221332117", "ms", "user_id"),
    ],
)
def test_a_row_that_makes_no_event_says_why(line: str, unit: str, reason: str) -> None:
    mapping = CsvMapping(event_type="click", time_unit=unit)
    ((number, converted),) = convert_rows(rows(f"user_id,item_id,timestamp\n{line}\n"), mapping)
    assert number == 2
    assert isinstance(converted, str) and converted.startswith(reason)


def test_iso_times_and_a_rating_out_of_range() -> None:
    mapping = CsvMapping(time_unit="iso", event_type="rate", value="stars")
    table = "user_id,item_id,timestamp,stars\nu,i,2015-06-02T05:02:12+02:00,5\nu,i,2015-06-02T05:02:12Z,0.5\n"
    (_, first), (_, second) = convert_rows(rows(table), mapping)
    assert first["timestamp"] == "2015-06-02T05:02:12+02:00"  # type: ignore[index]
    assert event_from_dict(first).timestamp_ms == 1433214132000
    assert second == "value of a rate must lie in 1-5"


def test_a_half_star_scale_maps_onto_one_to_five() -> None:
    """0.5-5 in half stars (MovieLens's newer tables) maps linearly onto 1-5: the ends stay
    the ends, 4 stays a good rating (positive from 4) and 3.5 does not; a rating outside
    the scale is a reported row; only ratings are rescaled."""
    mapping = CsvMapping(event_type="rate", value="stars", rating_scale=(0.5, 5.0))
    table = "user_id,item_id,timestamp,stars\n" + "".join(
        f"u,i{n},1433221332117,{stars}\n" for n, stars in enumerate(["0.5", "5", "4", "3.5", "6"])
    )
    converted = [event for _, event in convert_rows(rows(table), mapping)]
    values = [event["value"] for event in converted[:4]]  # type: ignore[index]
    assert values == [1.0, 5.0, 4.111111, 3.666667]
    assert converted[4] == "rating 6 lies outside the scale 0.5-5"
    bought = CsvMapping(event_type="buy", value="stars", rating_scale=(0.5, 5.0))
    ((_, buy),) = convert_rows(
        rows("user_id,item_id,timestamp,stars\nu,i,1433221332117,7\n"), bought
    )
    assert buy["value"] == 7  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [
        {"event_type": "rate", "rating_scale": (5.0, 0.5)},
        {},
        {"event_type": "click", "type_column": "event"},
        {"event_type": "like"},
        {"event_type": "login"},
        {"type_column": "event", "type_map": {"view": "impression"}},
        {"type_column": "event", "type_map": {"view": "look"}},
        {"event_type": "click", "time_unit": "minutes"},
    ],
)
def test_a_mapping_that_cannot_work_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        CsvMapping(**bad)


def test_a_type_mapping_is_name_equals_type() -> None:
    assert parse_type_map(["view=click", "a=b=c"]) == {"view": "click", "a": "b=c"}
    for bad in ("view", "=click", "view="):
        with pytest.raises(ValueError, match="NAME=EVENT_TYPE"):
            parse_type_map([bad])


def test_the_command_converts_a_ratings_log_that_evaluate_replays(tmp_path) -> None:
    """A ratings log written as a MovieLens table (epoch seconds, the generator's ratings
    profile) converts to a log evaluate replays; bad rows are reported by line and make the
    exit code 1; a missing column is a usage error before anything is written."""
    world = SyntheticWorld(profile("ratings", n_users=60, n_items=200, seed=3))
    table = tmp_path / "ratings.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        for event in world.events(3000):
            writer.writerow(
                [event["user_id"], event["item_id"], event["value"], event["timestamp"] // 1000]
            )
        writer.writerow(["u9", "m9", "9", "1000000000"])  # line 3002: a rating above 5
    output = tmp_path / "ratings.jsonl"
    args = [str(table), "--output", str(output), "--user", "userId", "--item", "movieId"]
    args += ["--time-unit", "s", "--type", "rate", "--value", "rating"]
    result = CliRunner().invoke(convert, args)
    assert result.exit_code == 1
    assert f"{table}:3002: value of a rate must lie in 1-5" in result.output
    assert "wrote 3000 events" in result.output
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert len(events) == 3000 and len({event["event_id"] for event in events}) == 3000
    assert all(event["timestamp"] % 1000 == 0 for event in events)
    replay = CliRunner().invoke(evaluate_command, ["--events", str(output), "--json"])
    assert replay.exit_code == 0, replay.output
    figures = json.loads(replay.stdout)
    assert figures["events"] == 3000 and figures["personal"]["cases"] > 100
    missing = CliRunner().invoke(
        convert, [str(table), "--output", str(tmp_path / "x.jsonl"), "--type", "rate"]
    )
    assert missing.exit_code == 2 and "has no column 'user_id'" in missing.output
    assert not (tmp_path / "x.jsonl").exists()


def test_a_table_saved_with_a_byte_order_mark_converts(tmp_path) -> None:
    """Spreadsheets save CSV with a UTF-8 byte order mark before the first column's name."""
    table = tmp_path / "excel.csv"
    table.write_bytes("\ufeffuser_id,item_id,timestamp\nu1,i1,1433221332117\n".encode())
    output = tmp_path / "excel.jsonl"
    result = CliRunner().invoke(convert, [str(table), "--output", str(output), "--type", "click"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(output.read_bytes())["user_id"] == "u1"


def test_lines_are_the_tables_own_blank_lines_and_quoted_newlines_included() -> None:
    """A row's line (and event id) is the line it ends on in the file: a blank line and a
    field quoted over two lines count."""
    table = 'user_id,item_id,timestamp,note\n\nu1,i1,1433221332117,"two\nlines"\nu2,i2,never,\n'
    converted = list(convert_rows(rows(table), CsvMapping(event_type="click")))
    assert [line for line, _ in converted] == [4, 5]
    assert converted[0][1]["event_id"] == "row-4"  # type: ignore[index]
    assert converted[1][1] == "column 'timestamp' is not a number: 'never'"


def test_the_command_refuses_what_would_lose_or_garble_data(tmp_path) -> None:
    """The output may not be the table; a table that is not UTF-8 or names a column twice is
    refused, and nothing (not even the rows before the bad byte) is written; a tab is
    given as \\t; another delimiter of more than one character is refused."""
    table = tmp_path / "t.csv"
    good = "user_id,item_id,timestamp\n" + "u1,i1,1433221332117\n" * 3
    table.write_text(good)
    same = CliRunner().invoke(convert, [str(table), "--output", str(table), "--type", "click"])
    assert same.exit_code == 2 and "overwrite the table" in same.output
    assert table.read_text() == good
    output = tmp_path / "out.jsonl"
    table.write_bytes(good.encode() + "u2,caf\u00e9,1433221332117\n".encode("latin-1"))
    latin = CliRunner().invoke(convert, [str(table), "--output", str(output), "--type", "click"])
    assert latin.exit_code == 1 and "cannot be read" in latin.output
    assert not output.exists() and not list(tmp_path.glob("*.partial"))
    table.write_text("user_id,item_id,user_id,timestamp\nu1,i1,u2,1433221332117\n")
    doubled = CliRunner().invoke(convert, [str(table), "--output", str(output), "--type", "click"])
    assert doubled.exit_code == 2 and "names a column twice: user_id" in doubled.output
    table.write_text("user_id\titem_id\ttimestamp\nu1\ti1\t1433221332117\n")
    args = [str(table), "--output", str(output), "--type", "click", "--delimiter"]
    tabbed = CliRunner().invoke(convert, [*args, "\\t"])
    assert tabbed.exit_code == 0, tabbed.output
    assert orjson.loads(output.read_bytes())["item_id"] == "i1"
    assert CliRunner().invoke(convert, [*args, ";;"]).exit_code == 2
