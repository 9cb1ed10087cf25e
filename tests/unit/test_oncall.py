"""Who is on duty (值班): rotations across their handoff, overrides, and `pingan oncall` from the shipped rosters.

Every time here is fixed, so the answers never depend on the day the tests run.
"""

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pingan.handlers.plans.directory import on_duty, shift_index
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.directory import Override, Roster, Rotation, RotationKind
from tests.fixtures.stack import cli, pingan_env

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def bj(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A Beijing-time instant."""
    return datetime(y, mo, d, h, mi, s, tzinfo=SHANGHAI)


def roster(members: list[str], kind: RotationKind = RotationKind.daily, start: date = date(2026, 1, 1),
           shift_hours: int | None = None, overrides: list[Override] | None = None) -> Roster:
    return Roster(id="test", name={"zh": "测试值班表"}, members=members,
                  rotation=Rotation(kind=kind, handoff=time(8, 0), start=start, shift_hours=shift_hours),
                  overrides=overrides or [])


# ── daily ─────────────────────────────────────────────────────────────────────────────────────────────────

DAILY = roster(["wang", "zhao", "qian"])


def test_daily_first_shift_starts_at_the_handoff_on_the_start_day() -> None:
    assert on_duty(DAILY, bj(2026, 1, 1, 8)) == "wang"
    assert on_duty(DAILY, bj(2026, 1, 2, 7, 59, 59)) == "wang"
    assert on_duty(DAILY, bj(2026, 1, 2, 8)) == "zhao"
    assert on_duty(DAILY, bj(2026, 1, 3, 8)) == "qian"
    assert on_duty(DAILY, bj(2026, 1, 4, 8)) == "wang"  # the rotation wraps


def test_daily_handoff_at_08_beijing_time() -> None:
    # 2026-11-25 is day 328 after 2026-01-01: 328 % 3 == 1, so zhao's shift starts at 08:00 that day.
    assert (date(2026, 11, 25) - date(2026, 1, 1)).days == 328
    assert on_duty(DAILY, bj(2026, 11, 25, 7, 59, 59)) == "wang"
    assert on_duty(DAILY, bj(2026, 11, 25, 8)) == "zhao"
    assert on_duty(DAILY, bj(2026, 11, 26, 7, 59, 59)) == "zhao"
    assert on_duty(DAILY, bj(2026, 11, 26, 8)) == "qian"


def test_the_handoff_is_the_same_instant_whatever_zone_the_question_is_asked_in() -> None:
    # 08:00 in Shanghai is 00:00 UTC (China keeps no summer time).
    assert on_duty(DAILY, datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)) == "wang"
    assert on_duty(DAILY, datetime(2026, 11, 25, 0, 0, tzinfo=UTC)) == "zhao"
    new_york = ZoneInfo("America/New_York")
    assert on_duty(DAILY, datetime(2026, 11, 24, 19, 0, tzinfo=new_york)) == "zhao"  # = 00:00 UTC on the 25th
    assert on_duty(DAILY, datetime(2026, 11, 24, 18, 59, tzinfo=new_york)) == "wang"


def test_before_the_rotation_starts_it_counts_backwards() -> None:
    assert shift_index(DAILY, bj(2026, 1, 1, 7, 59)) == -1
    assert on_duty(DAILY, bj(2026, 1, 1, 7, 59)) == "qian"


# ── weekly ────────────────────────────────────────────────────────────────────────────────────────────────

WEEKLY = roster(["lin", "ye", "ou", "zhou"], RotationKind.weekly, start=date(2025, 12, 29))  # a Monday


def test_weekly_rotation_hands_over_on_monday_at_08() -> None:
    monday = date(2026, 11, 23)
    assert monday.weekday() == 0 and (monday - date(2025, 12, 29)).days == 47 * 7
    assert on_duty(WEEKLY, bj(2026, 11, 23, 7, 59, 59)) == "ou"  # week 46: 46 % 4 == 2
    assert on_duty(WEEKLY, bj(2026, 11, 23, 8)) == "zhou"  # week 47: 47 % 4 == 3
    assert on_duty(WEEKLY, bj(2026, 11, 26, 20)) == "zhou"  # mid-week
    assert on_duty(WEEKLY, bj(2026, 11, 30, 7, 59, 59)) == "zhou"
    assert on_duty(WEEKLY, bj(2026, 11, 30, 8)) == "lin"
    assert on_duty(WEEKLY, bj(2025, 12, 29, 8)) == "lin"
    assert on_duty(WEEKLY, bj(2026, 1, 5, 8)) == "ye"


# ── custom: 12-hour shifts ───────────────────────────────────────────────────────────────────────────────

TWELVE = roster(["zhu", "ma"], RotationKind.custom, shift_hours=12)


def test_custom_twelve_hour_rotation_hands_over_at_08_and_20() -> None:
    assert on_duty(TWELVE, bj(2026, 1, 1, 8)) == "zhu"
    assert on_duty(TWELVE, bj(2026, 1, 1, 19, 59, 59)) == "zhu"
    assert on_duty(TWELVE, bj(2026, 1, 1, 20)) == "ma"
    assert on_duty(TWELVE, bj(2026, 1, 2, 7, 59, 59)) == "ma"
    assert on_duty(TWELVE, bj(2026, 1, 2, 8)) == "zhu"
    # Late in the year: 328 days = 656 shifts, even, so zhu holds the day shift and ma the night.
    assert on_duty(TWELVE, bj(2026, 11, 25, 8)) == "zhu"
    assert on_duty(TWELVE, bj(2026, 11, 25, 20)) == "ma"
    assert on_duty(TWELVE, bj(2026, 11, 26, 7, 59)) == "ma"


def test_custom_three_person_eight_hour_rotation() -> None:
    three = roster(["a", "b", "c"], RotationKind.custom, shift_hours=8)
    assert [on_duty(three, bj(2026, 3, 1, 8) + timedelta(hours=h)) for h in (0, 7, 8, 15, 16, 23, 24)] == [
        "a", "a", "b", "b", "c", "c", "a"]  # 3 shifts a day: every day starts with a again


# ── overrides ────────────────────────────────────────────────────────────────────────────────────────────

# Wang is on duty from 2026-11-25 08:00 (day 328, 328 % 2 == 0); Zhao from the 26th at 08:00.
PAIR = ["wang", "zhao"]
LI_COVERS_WANG = Override(person="li", covers="wang", start=bj(2026, 11, 25, 18), end=bj(2026, 11, 26, 8))


def test_override_li_covers_wang_from_18_to_08() -> None:
    r = roster(PAIR, overrides=[LI_COVERS_WANG])
    assert on_duty(roster(PAIR), bj(2026, 11, 25, 12)) == "wang"
    assert on_duty(r, bj(2026, 11, 25, 17, 59, 59)) == "wang"  # before the cover
    assert on_duty(r, bj(2026, 11, 25, 18)) == "li"  # the cover starts
    assert on_duty(r, bj(2026, 11, 26, 3)) == "li"
    assert on_duty(r, bj(2026, 11, 26, 7, 59, 59)) == "li"
    assert on_duty(r, bj(2026, 11, 26, 8)) == "zhao"  # the end is exclusive: back to the rotation
    assert on_duty(r, bj(2026, 11, 27, 8)) == "wang"


def test_override_times_are_instants_stored_in_utc() -> None:
    assert LI_COVERS_WANG.start == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    r = roster(PAIR, overrides=[LI_COVERS_WANG])
    assert on_duty(r, datetime(2026, 11, 25, 10, 0, tzinfo=UTC)) == "li"
    assert on_duty(r, datetime(2026, 11, 25, 9, 59, 59, tzinfo=UTC)) == "wang"


def test_override_for_someone_else_leaves_the_scheduled_person() -> None:
    # Li covers Wang, but over Zhao's shift: Zhao is not covered.
    r = roster(PAIR, overrides=[Override(person="li", covers="wang", start=bj(2026, 11, 26, 18),
                                         end=bj(2026, 11, 27, 8))])
    assert on_duty(r, bj(2026, 11, 26, 20)) == "zhao"


def test_override_without_covers_covers_whoever_is_on_duty() -> None:
    # Across a handoff: it covers Wang's last hours and Zhao's first ones.
    r = roster(PAIR, overrides=[Override(person="li", covers=None, start=bj(2026, 11, 26, 6),
                                         end=bj(2026, 11, 26, 10))])
    assert on_duty(r, bj(2026, 11, 26, 5, 59)) == "wang"
    assert on_duty(r, bj(2026, 11, 26, 7)) == "li"
    assert on_duty(r, bj(2026, 11, 26, 9)) == "li"
    assert on_duty(r, bj(2026, 11, 26, 10)) == "zhao"


def test_first_matching_override_wins() -> None:
    r = roster(PAIR, overrides=[
        Override(person="li", covers="zhao", start=bj(2026, 11, 25, 18), end=bj(2026, 11, 26, 8)),  # not Zhao's
        Override(person="sun", covers=None, start=bj(2026, 11, 25, 20), end=bj(2026, 11, 25, 22)),
        Override(person="zhang", covers="wang", start=bj(2026, 11, 25, 20), end=bj(2026, 11, 26, 8)),
    ])
    assert on_duty(r, bj(2026, 11, 25, 19)) == "wang"
    assert on_duty(r, bj(2026, 11, 25, 21)) == "sun"
    assert on_duty(r, bj(2026, 11, 25, 23)) == "zhang"


def test_an_override_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="end must be after"):
        Override(person="li", start=bj(2026, 11, 26, 8), end=bj(2026, 11, 25, 18))


# ── `pingan oncall` on the shipped rosters ───────────────────────────────────────────────────────────────

SHIPPED = load_plans(PLANS_DIR).directory


def line_for(stdout: str, roster_id: str) -> list[str]:
    found = [line.split() for line in stdout.splitlines() if line.split()[:1] == [roster_id]]
    assert len(found) == 1, stdout
    return found[0]


def test_pingan_oncall_names_the_duty_room_member_from_the_shipped_roster(tmp_path: Path) -> None:
    duty_room = SHIPPED.rosters["duty-room"]
    rotation = duty_room.rotation
    assert rotation.kind is RotationKind.daily and duty_room.timezone == "Asia/Shanghai"
    days = 333  # a fixed day well into the rotation; the member is members[days % len(members)]
    handoff = datetime.combine(rotation.start + timedelta(days=days), rotation.handoff, tzinfo=SHANGHAI)
    expected = duty_room.members[days % len(duty_room.members)]
    before = duty_room.members[(days - 1) % len(duty_room.members)]
    assert expected != before
    assert on_duty(duty_room, handoff) == expected  # the library agrees with the arithmetic
    env = pingan_env(tmp_path / "data")

    for at, person_id in ((handoff, expected), (handoff + timedelta(hours=23, minutes=59), expected),
                          (handoff - timedelta(seconds=1), before)):
        for iso in (at.isoformat(), at.astimezone(UTC).isoformat().replace("+00:00", "Z")):
            out = cli(env, "oncall", "duty-room", "--at", iso)
            assert out.returncode == 0, out.stderr
            fields = line_for(out.stdout, "duty-room")
            assert fields[-2:] == [person_id, SHIPPED.people[person_id].name], (iso, out.stdout)
            assert len(out.stdout.strip().splitlines()) == 1  # one roster asked, one line


def test_pingan_oncall_without_a_roster_lists_every_roster(tmp_path: Path) -> None:
    at = bj(2026, 11, 25, 20)
    out = cli(pingan_env(tmp_path / "data"), "oncall", "--at", at.isoformat())
    assert out.returncode == 0, out.stderr
    for roster_id, r in SHIPPED.rosters.items():
        assert line_for(out.stdout, roster_id)[-2] == on_duty(r, at)
    # The 12-hour forecasters changed at 20:00; the weekly duty leader is the week's.
    assert line_for(out.stdout, "weather-duty")[-2] == on_duty(SHIPPED.rosters["weather-duty"], at)
    assert line_for(out.stdout, "weather-duty")[-2] != on_duty(SHIPPED.rosters["weather-duty"], bj(2026, 11, 25, 19))


def test_pingan_oncall_unknown_roster_fails_clearly(tmp_path: Path) -> None:
    out = cli(pingan_env(tmp_path / "data"), "oncall", "no-such-roster", "--at", "2026-11-25T18:00+08:00")
    assert out.returncode != 0
    assert "no roster 'no-such-roster'" in out.stderr and "duty-room" in out.stderr  # names the known ones
    assert "Traceback" not in out.stderr
    assert out.stdout.strip() == ""


def test_pingan_oncall_naive_time_fails_clearly(tmp_path: Path) -> None:
    out = cli(pingan_env(tmp_path / "data"), "oncall", "duty-room", "--at", "2026-11-25T18:00")
    assert out.returncode != 0
    assert "--at needs a time zone offset" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout.strip() == ""
