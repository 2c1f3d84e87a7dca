"""Next steps: every rule of the table fires on its case and stays quiet otherwise; overrides.

Each rule is tested on facts built for it (a day or a week) and on a day or week where it does
not apply, including the days and weeks where no advice applies at all (the fallback rule).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from glutewake.analytics.next_steps import (
    RULE_FIELDS,
    Bout,
    DayFacts,
    NextStepsError,
    SessionFacts,
    WeekFacts,
    day_steps,
    load_rules,
    steps_html,
    week_steps,
)

DAY = dt.date(2026, 3, 30)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def bout(h0: int, m0: int, minutes: float, day: dt.date = DAY) -> Bout:
    start = at(h0, m0, day)
    return Bout(start, start + dt.timedelta(minutes=minutes), minutes)


GOOD_SESSION = SessionFacts(start=at(18, 30), exercise="glute_bridge", reps=12, fired=12,
                            paired=12, hamstrings_led=0, glutes_led=9, peak_cv=0.12)
#: a day on which no advice applies: valid, goals met, short sits only, a good session
QUIET_DAY = DayFacts(
    day=DAY, phase=1, has_thigh=True, valid_day=True, wear_min=900, sitting_min=400,
    goal_sitting_min=480, breaks_per_hour=4.0, goal_breaks_per_hour=3.0,
    bouts=(bout(8, 0, 25), bout(9, 0, 20)), has_emg=True, sessions=(GOOD_SESSION,),
    pain={"lower back": 2, "hip": 1},
)
QUIET_WEEK = WeekFacts(
    first=DAY - dt.timedelta(days=6), last=DAY, phase=1, valid_days=7, days_with_thigh=7,
    sitting_min_mean=400, goal_sitting_min=480, bouts=(bout(10, 0, 40),), has_emg=True,
    exercise_days=6, exercises=("glute_bridge",) * 6, reps=72, fired=70, paired=72,
    hamstrings_led=3, pain=((DAY, "hip", 2),), ready=None, next_step="move to phase 2",
)


def rules_of(steps: list) -> list[str]:
    return [s.rule for s in steps]


def test_a_day_where_no_advice_applies() -> None:
    steps = day_steps(QUIET_DAY)
    assert rules_of(steps) == ["session_went_well", "nothing_to_change"]
    assert steps[0].text == ("18:30 glute bridge: the glutes fired on 12 of 12 reps, and before "
                             "the hamstrings on 9 of 12. Keep this form.")
    assert steps[1].kind == "none" and steps[1].text.startswith("Nothing to change today")
    # and a day without a phase or EMG, with no data problems: only the fallback
    bare = dataclasses.replace(QUIET_DAY, phase=None, has_emg=False, sessions=())
    assert rules_of(day_steps(bare)) == ["nothing_to_change"]


def test_no_thigh_data() -> None:
    day = dataclasses.replace(QUIET_DAY, has_thigh=False, valid_day=False, bouts=())
    steps = day_steps(day)
    assert rules_of(steps)[0] == "no_thigh_data" and "nothing_to_change" not in rules_of(steps)
    assert "put the thigh sensor on" in steps[0].text


def test_wear_longer_and_no_goal_judged() -> None:
    day = dataclasses.replace(QUIET_DAY, valid_day=False, wear_min=125, sitting_min=700,
                              breaks_per_hour=0.5)
    steps = day_steps(day)
    assert rules_of(steps)[0] == "wear_longer"
    assert "recorded only 2 h 05 min today" in steps[0].text
    assert "no sitting goal is judged" in steps[0].text
    # over the goal and below the breaks goal, but on a day that is not valid: not judged
    assert "sitting_over_goal" not in rules_of(steps)
    assert "too_few_breaks" not in rules_of(steps)
    assert "wear_longer" not in rules_of(day_steps(QUIET_DAY))


def test_break_up_sitting_names_the_longest_sits_in_clock_order() -> None:
    day = dataclasses.replace(QUIET_DAY, bouts=(
        bout(8, 30, 105), bout(11, 0, 31), bout(13, 0, 85), bout(16, 0, 45), bout(19, 0, 20)))
    steps = day_steps(day)
    text = next(s.text for s in steps if s.rule == "break_up_sitting")
    assert text == ("Stand up for 2 minutes at least every 30 minutes. Today's longest sits: "
                    "08:30–10:15 (1 h 45 min), 13:00–14:25 (1 h 25 min) and 16:00–16:45 "
                    "(45 min).")
    assert "nothing_to_change" not in rules_of(steps)
    # a 29-minute sit is not a long one
    assert "break_up_sitting" not in rules_of(
        day_steps(dataclasses.replace(QUIET_DAY, bouts=(bout(8, 0, 29),))))


def test_sitting_over_goal() -> None:
    day = dataclasses.replace(QUIET_DAY, sitting_min=560, bouts=(bout(13, 0, 95),))
    text = next(s.text for s in day_steps(day) if s.rule == "sitting_over_goal")
    assert text == ("You sat 9 h 20 min today, 1 h 20 min more than your goal of 8 h: swap part "
                    "of the longest sit (13:00–14:35) for standing or a walk.")
    no_goal = dataclasses.replace(day, goal_sitting_min=None)
    assert "sitting_over_goal" not in rules_of(day_steps(no_goal))


def test_too_few_breaks() -> None:
    day = dataclasses.replace(QUIET_DAY, breaks_per_hour=1.64)
    text = next(s.text for s in day_steps(day) if s.rule == "too_few_breaks")
    assert text.startswith("You broke up your sitting 1.6 times per sitting hour (goal: 3)")
    assert "too_few_breaks" not in rules_of(day_steps(dataclasses.replace(
        day, goal_breaks_per_hour=None)))


def test_pain_high() -> None:
    day = dataclasses.replace(QUIET_DAY, pain={"lower back": 7, "hip": 3})
    text = next(s.text for s in day_steps(day) if s.rule == "pain_high")
    assert text.startswith("You rated your lower back pain 7/10 today: talk to your clinician")
    assert "pain_high" not in rules_of(day_steps(dataclasses.replace(day, pain={"hip": 6})))


@pytest.mark.parametrize(("phase", "exercises"), [
    (1, "glute bridges, clamshells and side-lying leg lifts"),
    (2, "weighted hip thrusts, step-ups and cable kickbacks"),
    (3, "lunges, single-leg deadlifts and lateral bounds"),
])
def test_do_exercises_names_the_phase_exercises(phase: int, exercises: str) -> None:
    day = dataclasses.replace(QUIET_DAY, phase=phase, sessions=())
    text = next(s.text for s in day_steps(day) if s.rule == "do_exercises")
    assert text.startswith(f"No exercise session today: do your phase {phase} exercises, "
                           f"{exercises} (")
    assert "do_exercises" not in rules_of(day_steps(QUIET_DAY))  # a session was done
    assert "do_exercises" not in rules_of(day_steps(dataclasses.replace(day, phase=None)))


def test_exercises_without_emg() -> None:
    day = dataclasses.replace(QUIET_DAY, has_emg=False, sessions=())
    steps = day_steps(day)
    assert rules_of(steps) == ["exercises_without_emg"]
    assert "cannot show how your glutes fired" in steps[0].text
    assert "exercises_without_emg" not in rules_of(day_steps(QUIET_DAY))


def test_glutes_missed() -> None:
    session = dataclasses.replace(GOOD_SESSION, fired=9)
    steps = day_steps(dataclasses.replace(QUIET_DAY, sessions=(session,)))
    text = next(s.text for s in steps if s.rule == "glutes_missed")
    assert text.startswith("18:30 glute bridge: the glutes fired on 9 of 12 reps. Squeeze")
    assert "session_went_well" not in rules_of(steps)
    # 10 of 12 is above 80 %; and a 4-rep session is too short to judge
    assert "glutes_missed" not in rules_of(day_steps(dataclasses.replace(
        QUIET_DAY, sessions=(dataclasses.replace(GOOD_SESSION, fired=10),))))
    assert "glutes_missed" not in rules_of(day_steps(dataclasses.replace(
        QUIET_DAY, sessions=(dataclasses.replace(GOOD_SESSION, reps=4, fired=2),))))


def test_hamstrings_led() -> None:
    session = dataclasses.replace(GOOD_SESSION, hamstrings_led=3, glutes_led=2)
    steps = day_steps(dataclasses.replace(QUIET_DAY, sessions=(session,)))
    text = next(s.text for s in steps if s.rule == "hamstrings_led")
    assert text == ("18:30 glute bridge: the hamstrings fired first on 3 of 12 reps. Slow down "
                    "and squeeze the glutes first.")
    # 2 of 12 is within what onset errors alone can produce (below 25 %)
    two = dataclasses.replace(GOOD_SESSION, hamstrings_led=2)
    assert "hamstrings_led" not in rules_of(day_steps(dataclasses.replace(
        QUIET_DAY, sessions=(two,))))


def test_uneven_reps() -> None:
    session = dataclasses.replace(GOOD_SESSION, peak_cv=0.34)
    text = next(s.text for s in day_steps(dataclasses.replace(QUIET_DAY, sessions=(session,)))
                if s.rule == "uneven_reps")
    assert text.startswith("18:30 glute bridge: the glute peak varied by 34% from rep to rep.")
    assert "uneven_reps" not in rules_of(day_steps(QUIET_DAY))


def test_other_phase_exercise() -> None:
    day = dataclasses.replace(QUIET_DAY, phase=2,
                              sessions=(dataclasses.replace(GOOD_SESSION, exercise="clamshell"),))
    text = next(s.text for s in day_steps(day) if s.rule == "other_phase_exercise")
    assert text == ("18:30 clamshell is a phase 1 exercise; in phase 2 your exercises are "
                    "weighted hip thrusts, step-ups and cable kickbacks.")
    assert "other_phase_exercise" not in rules_of(day_steps(QUIET_DAY))  # bridge in phase 1
    unknown = dataclasses.replace(day, sessions=(dataclasses.replace(GOOD_SESSION,
                                                                     exercise="yoga"),))
    assert "other_phase_exercise" not in rules_of(day_steps(unknown))


def test_session_went_well_needs_a_judgeable_session() -> None:
    short = dataclasses.replace(GOOD_SESSION, reps=3, fired=3)
    steps = day_steps(dataclasses.replace(QUIET_DAY, sessions=(short,)))
    assert "session_went_well" not in rules_of(steps)
    no_reference = dataclasses.replace(GOOD_SESSION, paired=0, glutes_led=0)
    text = next(s.text for s in day_steps(dataclasses.replace(QUIET_DAY,
                                                              sessions=(no_reference,)))
                if s.rule == "session_went_well")
    assert text == "18:30 glute bridge: the glutes fired on 12 of 12 reps. Keep this form."


def test_week_where_no_advice_applies() -> None:
    steps = week_steps(QUIET_WEEK)
    assert rules_of(steps) == ["week_nothing_to_change"]


def test_week_wear_longer() -> None:
    week = dataclasses.replace(QUIET_WEEK, valid_days=3)
    text = next(s.text for s in week_steps(week) if s.rule == "week_wear_longer")
    assert text.startswith("Only 3 of the last 7 days had enough wear to count")


def test_week_break_up_sitting_names_the_busy_hours_and_the_longest() -> None:
    days = [DAY - dt.timedelta(days=k) for k in range(7)]
    bouts = (*(bout(13, 10 * (k % 3), 40 + k, d) for k, d in enumerate(days)),
             bout(8, 30, 105, days[2]))
    week = dataclasses.replace(QUIET_WEEK, bouts=bouts)
    text = next(s.text for s in week_steps(week) if s.rule == "week_break_up_sitting")
    assert text == ("You sat for 30 minutes or more 8 times in the last 7 days (1.1 a day on the "
                    "7 day(s) with sitting data), most often starting between 12:00 and 14:00: "
                    "plan a 2-minute standing break in that part of the day. The longest: Sat "
                    "28 Mar 08:30–10:15 (1 h 45 min).")
    assert "week_break_up_sitting" not in rules_of(week_steps(QUIET_WEEK))  # 1 in 7 days


def test_week_sitting_over_goal() -> None:
    week = dataclasses.replace(QUIET_WEEK, sitting_min_mean=530)
    text = next(s.text for s in week_steps(week) if s.rule == "week_sitting_over_goal")
    assert text == ("You sat 8 h 50 min a day on average (7 valid days), 50 min more than your "
                    "goal of 8 h.")
    too_few = dataclasses.replace(week, valid_days=2)
    assert "week_sitting_over_goal" not in rules_of(week_steps(too_few))


def test_week_exercise_more() -> None:
    week = dataclasses.replace(QUIET_WEEK, exercise_days=3)
    text = next(s.text for s in week_steps(week) if s.rule == "week_exercise_more")
    assert text == ("You exercised on 3 of the last 7 days: do your phase 1 exercises (glute "
                    "bridges, clamshells and side-lying leg lifts) every day.")
    assert "week_exercise_more" not in rules_of(week_steps(dataclasses.replace(
        week, has_emg=False)))


def test_week_other_phase_exercise() -> None:
    week = dataclasses.replace(QUIET_WEEK, phase=2,
                               exercises=("clamshell", "glute_bridge", "hip_thrust", None))
    text = next(s.text for s in week_steps(week) if s.rule == "week_other_phase_exercise")
    assert text == ("2 of the week's 4 sessions were clamshell and glute bridge, exercises of "
                    "another phase; in phase 2 your exercises are weighted hip thrusts, step-ups "
                    "and cable kickbacks.")


def test_week_glutes_missed_and_hamstrings_led() -> None:
    week = dataclasses.replace(QUIET_WEEK, fired=50, hamstrings_led=30)
    steps = week_steps(week)
    assert "Over the week the glutes fired on 50 of 72 reps" in steps[0].text
    assert steps[1].text.startswith("Over the week the hamstrings fired first on 30 of 72 reps")
    few = dataclasses.replace(week, reps=12, paired=12, fired=6, hamstrings_led=6)
    assert not {"week_glutes_missed", "week_hamstrings_led"} & set(rules_of(week_steps(few)))


def test_week_pain_high() -> None:
    week = dataclasses.replace(QUIET_WEEK, pain=((DAY - dt.timedelta(days=2), "knee", 8),
                                                 (DAY, "hip", 3)))
    text = next(s.text for s in week_steps(week) if s.rule == "week_pain_high")
    assert text.startswith("You rated your knee pain 8/10 on Sat 28 Mar")


def test_week_ready_and_not_ready() -> None:
    ready = week_steps(dataclasses.replace(QUIET_WEEK, ready=True))
    assert rules_of(ready) == ["week_ready"]
    assert ready[0].text == ("The data meets every criterion to move to phase 2: talk to your "
                             "clinician about starting weighted hip thrusts, step-ups and cable "
                             "kickbacks.")
    not_ready = week_steps(dataclasses.replace(
        QUIET_WEEK, ready=False, not_met=("glutes fire before the hamstrings",)))
    assert rules_of(not_ready) == ["week_not_ready"]
    assert not_ready[0].text == ("Stay with phase 1 for now; not met yet: glutes fire before "
                                 "the hamstrings.")
    # cannot judge: no readiness advice
    assert rules_of(week_steps(QUIET_WEEK)) == ["week_nothing_to_change"]


def test_every_rule_is_in_the_table_and_tested() -> None:
    book = load_rules()
    assert {r.id for r in book.rules} == set(RULE_FIELDS)
    source = Path(__file__).read_text(encoding="utf-8")
    untested = [rule for rule in RULE_FIELDS if f'"{rule}"' not in source]
    assert untested == []


def test_a_clinician_overrides_wording_params_and_rules(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(
        '[[rules]]\nid = "break_up_sitting"\n'
        'text = "Every {every_min} minutes, walk for {stand_min}. Long sits: {long_bouts}."\n'
        "params = { every_min = 45, stand_min = 3, long_bout_min = 60 }\n"
        '[[rules]]\nid = "session_went_well"\nenabled = false\n'
        '[phases.1]\nexercises = ["bridges"]\n',
        encoding="utf-8",
    )
    book = load_rules(path)
    day = dataclasses.replace(QUIET_DAY, bouts=(bout(8, 30, 75), bout(13, 0, 40)), sessions=())
    steps = day_steps(day, book)
    assert steps[0].text == "Every 45 minutes, walk for 3. Long sits: 08:30–09:45 (1 h 15 min)."
    assert "No exercise session today: do your phase 1 exercises, bridges (" in steps[1].text
    assert "session_went_well" not in rules_of(day_steps(QUIET_DAY, book))
    # rules the file leaves out keep the built-in wording
    assert book.rule("pain_high").text == load_rules().rule("pain_high").text


@pytest.mark.parametrize(("content", "message"), [
    ('[[rules]]\nid = "nap_more"\ntext = "x"\n', "unknown rule 'nap_more'"),
    ('[[rules]]\nid = "pain_high"\ntext = "{site} {cat}"\n', "unknown field {cat}"),
    ('[[rules]]\nid = "pain_high"\ntext = "{site.__class__}"\n', "unknown field"),
    ('[[rules]]\nid = "pain_high"\nparams = { pain_min = "high" }\n', "non-negative number"),
    ('[[rules]]\nid = "pain_high"\nparams = { ache = 3 }\n', "unknown param 'ache'"),
    ('[[rules]]\nid = "pain_high"\nscope = "week"\n', "has scope 'day'"),
    ("[[rules]\n", "not valid TOML"),
    ('[phases.1]\nexercises = "bridges"\n', "must be a list of strings"),
])
def test_a_bad_rules_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NextStepsError, match=message) as info:
        load_rules(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(NextStepsError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_steps_html_escapes_the_wording(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[[rules]]\nid = "nothing_to_change"\ntext = "<b>keep</b> going & on"\n',
                    encoding="utf-8")
    steps = day_steps(dataclasses.replace(QUIET_DAY, sessions=(), phase=None), load_rules(path))
    html = steps_html(steps)
    assert "&lt;b&gt;keep&lt;/b&gt; going &amp; on" in html and "<b>" not in html
