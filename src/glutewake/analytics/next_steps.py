"""Next steps, in words: what the participant should do, from the day's (or week's) own data.

The rules and their wording live in one table, ``next_steps.toml`` beside this module, which a
clinician can override with a file of their own (:func:`load_rules`). This module turns the
report's data into plain facts (:class:`DayFacts`, :class:`WeekFacts`), checks each rule's
condition on them (the conditions are here, one function per rule id, documented in
docs/reports.md), and fills the rule's wording with the facts: real clock times of the long
sits, the phase's exercises, what each session showed.

The seed article's advice comes down to two acts: break up sitting, and do the phase's
exercises daily. Every rule serves one of them, reports data that would let it be judged, or
sends the participant to their clinician (pain).
"""

from __future__ import annotations

import datetime as dt
import html
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from glutewake.analytics.day_data import ReportError
from glutewake.analytics.evidence import ONSET_ERROR_MS

__all__ = [
    "Bout",
    "DayFacts",
    "NextStepsError",
    "PhasePlan",
    "Rule",
    "RuleBook",
    "SessionFacts",
    "Step",
    "WeekFacts",
    "day_steps",
    "load_rules",
    "steps_html",
    "week_steps",
]

Scope = Literal["day", "week"]
Kind = Literal["advice", "feedback", "none"]


class NextStepsError(ReportError):
    """A next-steps rules file is unreadable or invalid (names the file and what is wrong)."""


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Rule:
    """One row of the next-steps table."""

    id: str
    scope: Scope
    when: str
    text: str
    params: Mapping[str, float] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True)
class PhasePlan:
    """What a rehabilitation phase asks for: its exercises (names and recording labels)."""

    phase: int
    name: str
    exercises: tuple[str, ...]
    labels: tuple[str, ...]
    how: str


@dataclass(frozen=True)
class RuleBook:
    """The next-steps table: rules in display order, and the phases' exercises."""

    rules: tuple[Rule, ...]
    phases: Mapping[int, PhasePlan]
    source: str

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id."""
        return next(r for r in self.rules if r.id == rule_id)

    def exercises(self, phase: int | None) -> str:
        """The phase's exercises as a phrase ("glute bridges, clamshells and ...")."""
        plan = self.phases.get(phase) if phase is not None else None
        return _and(list(plan.exercises)) if plan else "your exercises"

    def phase_of_label(self, label: str | None) -> int | None:
        """The phase whose exercise labels include ``label`` (None when none does)."""
        if not label:
            return None
        return next((p for p, plan in sorted(self.phases.items()) if label in plan.labels), None)


#: the fields each rule's wording may use (besides its params); see docs/reports.md
RULE_FIELDS: dict[str, tuple[Scope, Kind, tuple[str, ...]]] = {
    "no_thigh_data": ("day", "advice", ()),
    "wear_longer": ("day", "advice", ("wear",)),
    "break_up_sitting": ("day", "advice", ("long_bouts", "n_long")),
    "sitting_over_goal": ("day", "advice", ("sitting", "over", "goal", "longest")),
    "too_few_breaks": ("day", "advice", ("breaks_per_hour", "goal_breaks")),
    "pain_high": ("day", "advice", ("site", "rating")),
    "do_exercises": ("day", "advice", ("phase", "exercises", "how")),
    "exercises_without_emg": ("day", "advice", ("phase", "exercises", "how")),
    "glutes_missed": ("day", "advice", ("time", "exercise", "fired", "reps")),
    "hamstrings_led": ("day", "advice", ("time", "exercise", "led", "paired", "onset_error_ms")),
    "uneven_reps": ("day", "advice", ("time", "exercise", "cv")),
    "other_phase_exercise": ("day", "advice", ("time", "exercise", "exercise_phase", "phase",
                                               "exercises")),
    "session_went_well": ("day", "feedback", ("time", "exercise", "fired", "reps", "firing")),
    "nothing_to_change": ("day", "none", ()),
    "week_wear_longer": ("week", "advice", ("valid_days", "days")),
    "week_break_up_sitting": ("week", "advice", ("n_long", "days", "per_day", "window",
                                                 "longest", "days_with_data")),
    "week_sitting_over_goal": ("week", "advice", ("sitting", "valid_days", "over", "goal")),
    "week_exercise_more": ("week", "advice", ("exercise_days", "days", "phase", "exercises")),
    "week_other_phase_exercise": ("week", "advice", ("n_other", "sessions", "labels", "phase",
                                                     "exercises")),
    "week_glutes_missed": ("week", "advice", ("fired", "reps")),
    "week_hamstrings_led": ("week", "advice", ("led", "paired", "onset_error_ms")),
    "week_pain_high": ("week", "advice", ("site", "rating", "date")),
    "week_ready": ("week", "advice", ("next_step", "next_exercises", "phase")),
    "week_not_ready": ("week", "advice", ("phase", "not_met")),
    "week_nothing_to_change": ("week", "none", ()),
}


def _check_text(where: str, rule_id: str, text: str, params: Mapping[str, float]) -> None:
    allowed = set(RULE_FIELDS[rule_id][2]) | set(params)
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise NextStepsError(f"{where}: rule {rule_id!r}: text is not a valid template "
                             f"({exc})") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise NextStepsError(
                f"{where}: rule {rule_id!r}: unknown field {{{name}}} in its text (allowed: "
                f"{', '.join(sorted(allowed)) or 'none'})"
            )


def _parse_rule(where: str, raw: Any, base: Rule | None) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise NextStepsError(f"{where}: every [[rules]] entry needs an id")
    rule_id = raw["id"]
    if rule_id not in RULE_FIELDS:
        raise NextStepsError(f"{where}: unknown rule {rule_id!r} (known: "
                             f"{', '.join(RULE_FIELDS)})")
    unknown = set(raw) - {"id", "scope", "when", "text", "params", "enabled"}
    if unknown:
        raise NextStepsError(f"{where}: rule {rule_id!r}: unknown key(s) {sorted(unknown)}")
    scope = RULE_FIELDS[rule_id][0]
    if raw.get("scope", scope) != scope:
        raise NextStepsError(f"{where}: rule {rule_id!r} has scope {scope!r}, not "
                             f"{raw['scope']!r}")
    params = dict(base.params) if base else {}
    given = raw.get("params", {})
    if not isinstance(given, dict):
        raise NextStepsError(f"{where}: rule {rule_id!r}: params must be a table")
    for key, value in given.items():
        if base is not None and key not in base.params:
            raise NextStepsError(f"{where}: rule {rule_id!r}: unknown param {key!r} (known: "
                                 f"{', '.join(base.params) or 'none'})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise NextStepsError(f"{where}: rule {rule_id!r}: param {key!r} must be a "
                                 f"non-negative number, not {value!r}")
        params[key] = float(value)
    text = raw.get("text", base.text if base else None)
    if not isinstance(text, str) or not text.strip():
        raise NextStepsError(f"{where}: rule {rule_id!r} needs a text")
    _check_text(where, rule_id, text, params)
    enabled = raw.get("enabled", base.enabled if base else True)
    if not isinstance(enabled, bool):
        raise NextStepsError(f"{where}: rule {rule_id!r}: enabled must be true or false")
    when = raw.get("when", base.when if base else "")
    return Rule(rule_id, scope, str(when), text, params, enabled)


def _parse_phase(where: str, key: str, raw: Any, base: PhasePlan | None) -> PhasePlan:
    try:
        phase = int(key)
    except ValueError:
        raise NextStepsError(f"{where}: phase {key!r} is not a number") from None
    if not isinstance(raw, dict):
        raise NextStepsError(f"{where}: [phases.{key}] must be a table")

    def strings(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = raw.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise NextStepsError(f"{where}: [phases.{key}] {name} must be a list of strings")
        return tuple(value)

    plan = PhasePlan(
        phase=phase,
        name=str(raw.get("name", base.name if base else f"phase {phase}")),
        exercises=strings("exercises", base.exercises if base else ()),
        labels=strings("labels", base.labels if base else ()),
        how=str(raw.get("how", base.how if base else "")),
    )
    if not plan.exercises:
        raise NextStepsError(f"{where}: [phases.{key}] needs at least one exercise")
    return plan


def _read(path: Path | None) -> tuple[str, dict[str, Any]]:
    if path is None:
        text = resources.files("glutewake.analytics").joinpath("next_steps.toml").read_text(
            encoding="utf-8")
        where = "built-in next_steps.toml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise NextStepsError(f"{where}: cannot read the next-steps rules "
                                 f"({exc.strerror})") from None
    try:
        return where, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NextStepsError(f"{where}: not valid TOML ({exc})") from None


def load_rules(path: Path | None = None) -> RuleBook:
    """The next-steps table: the built-in one, with a clinician's file laid over it.

    Parameters
    ----------
    path : pathlib.Path, optional
        A TOML file in the format of the built-in ``next_steps.toml``. Its rules replace the
        built-in rules with the same id (text, params, ``enabled``); its phases replace the
        built-in phases with the same number.

    Raises
    ------
    NextStepsError
        For an unreadable file, invalid TOML, an unknown rule, param or field, a wrong type.

    Examples
    --------
    >>> book = load_rules()
    >>> book.rule("break_up_sitting").params["long_bout_min"]
    30.0
    """
    where, raw = _read(None)
    rules = {r.id: r for r in (_parse_rule(where, item, None) for item in raw.get("rules", []))}
    missing = set(RULE_FIELDS) - set(rules)
    assert not missing, f"built-in next_steps.toml lacks {missing}"
    phases = {p.phase: p for p in (_parse_phase(where, k, v, None)
                                   for k, v in raw.get("phases", {}).items())}
    source = where
    if path is not None:
        where, over = _read(path)
        items = over.get("rules", [])
        if not isinstance(items, list):
            raise NextStepsError(f"{where}: rules must be written as [[rules]] entries")
        for item in items:
            base = rules.get(str(item.get("id"))) if isinstance(item, dict) else None
            rule = _parse_rule(where, item, base)
            rules[rule.id] = rule
        for key, value in over.get("phases", {}).items():
            plan = _parse_phase(where, key, value, phases.get(int(key)) if key.isdigit()
                                else None)
            phases[plan.phase] = plan
        source = where
    return RuleBook(tuple(rules.values()), phases, source)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Bout:
    """A sitting bout in local clock time."""

    start: dt.datetime
    end: dt.datetime
    minutes: float

    def clock(self) -> str:
        """``"08:30–10:15"``."""
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class SessionFacts:
    """What one exercise session showed (counts per repetition, from the contractions)."""

    start: dt.datetime
    exercise: str | None
    reps: int
    fired: int | None
    paired: int = 0
    hamstrings_led: int = 0
    glutes_led: int = 0
    peak_cv: float | None = None


@dataclass(frozen=True)
class DayFacts:
    """The day's facts the day rules look at."""

    day: dt.date
    phase: int | None
    has_thigh: bool
    valid_day: bool
    wear_min: float | None = None
    sitting_min: float | None = None
    goal_sitting_min: float | None = None
    breaks_per_hour: float | None = None
    goal_breaks_per_hour: float | None = None
    bouts: tuple[Bout, ...] = ()
    has_emg: bool = False
    sessions: tuple[SessionFacts, ...] = ()
    pain: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WeekFacts:
    """The last seven days' facts the week rules look at."""

    first: dt.date
    last: dt.date
    phase: int | None
    valid_days: int
    days_with_thigh: int
    sitting_min_mean: float | None = None
    goal_sitting_min: float | None = None
    bouts: tuple[Bout, ...] = ()
    has_emg: bool = False
    exercise_days: int = 0
    exercises: tuple[str | None, ...] = ()
    reps: int = 0
    fired: int = 0
    paired: int = 0
    hamstrings_led: int = 0
    pain: tuple[tuple[dt.date, str, int], ...] = ()
    ready: bool | None = None
    next_step: str = ""
    not_met: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        """Days in the week (7)."""
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Step:
    """One next step: the rule that gave it and its words."""

    rule: str
    text: str
    kind: Kind


# --------------------------------------------------------------------------- words


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def hm(minutes: float) -> str:
    """``95`` -> ``"1 h 35 min"``; ``40`` -> ``"40 min"``; ``420`` -> ``"7 h"``."""
    h, m = divmod(round(minutes), 60)
    if not h:
        return f"{m} min"
    return f"{h} h {m:02d} min" if m else f"{h} h"


def _num(value: float) -> str:
    return f"{value:g}"


def _exercise_name(label: str | None) -> str:
    return (label or "session").replace("_", " ")


def _long(bouts: tuple[Bout, ...], minimum: float) -> list[Bout]:
    return [b for b in bouts if b.minutes >= minimum]


def _fill(rule: Rule, **fields: Any) -> str:
    values = {k: _num(v) for k, v in rule.params.items()}
    values.update({k: str(v) for k, v in fields.items()})
    return rule.text.format_map(values)


def _worst_pain(pain: Mapping[str, int]) -> tuple[str, int] | None:
    rated = [(site, int(v)) for site, v in pain.items() if v is not None]
    return max(rated, key=lambda sv: sv[1]) if rated else None


# --------------------------------------------------------------------------- day rules

DayCheck = Callable[[DayFacts, Rule, RuleBook], Iterator[str]]


def _no_thigh_data(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if not f.has_thigh:
        yield _fill(r)


def _wear_longer(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.has_thigh and not f.valid_day:
        yield _fill(r, wear=hm(f.wear_min or 0.0))


def _break_up_sitting(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    long = _long(f.bouts, r.params["long_bout_min"])
    if f.has_thigh and long:
        named = sorted(long, key=lambda b: -b.minutes)[: max(int(r.params["bouts_named"]), 1)]
        words = [f"{b.clock()} ({hm(b.minutes)})" for b in sorted(named, key=lambda b: b.start)]
        yield _fill(r, long_bouts=_and(words), n_long=len(long))


def _sitting_over_goal(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    goal, sitting = f.goal_sitting_min, f.sitting_min
    if f.valid_day and goal and sitting is not None and sitting > goal:
        longest = max(f.bouts, key=lambda b: b.minutes, default=None)
        yield _fill(r, sitting=hm(sitting), over=hm(sitting - goal), goal=hm(goal),
                    longest=longest.clock() if longest else "none")


def _too_few_breaks(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    goal, rate = f.goal_breaks_per_hour, f.breaks_per_hour
    if f.valid_day and goal and rate is not None and rate < goal:
        yield _fill(r, breaks_per_hour=f"{rate:.1f}", goal_breaks=_num(goal))


def _pain_high(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    worst = _worst_pain(f.pain)
    if worst and worst[1] >= r.params["pain_min"]:
        yield _fill(r, site=worst[0], rating=worst[1])


def _phase_fields(f: DayFacts | WeekFacts, book: RuleBook) -> dict[str, Any]:
    plan = book.phases.get(f.phase) if f.phase is not None else None
    return {"phase": f.phase, "exercises": book.exercises(f.phase), "how": plan.how if plan
            else ""}


def _do_exercises(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.phase is not None and f.has_emg and not f.sessions:
        yield _fill(r, **_phase_fields(f, book))


def _exercises_without_emg(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.phase is not None and not f.has_emg:
        yield _fill(r, **_phase_fields(f, book))


def _session_fields(s: SessionFacts) -> dict[str, Any]:
    return {"time": f"{s.start:%H:%M}", "exercise": _exercise_name(s.exercise)}


def _missed(s: SessionFacts, r: Rule) -> bool:
    return (s.fired is not None and s.reps >= r.params["min_reps"]
            and s.fired < r.params["fired_share_min"] * s.reps)


def _led(s: SessionFacts, r: Rule) -> bool:
    return (s.hamstrings_led >= max(r.params["min_led_reps"], 1)
            and s.hamstrings_led >= r.params["led_share_min"] * s.paired)


def _uneven(s: SessionFacts, r: Rule) -> bool:
    return (s.peak_cv is not None and s.reps >= r.params["min_reps"]
            and s.peak_cv > r.params["peak_cv_max"])


def _glutes_missed(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    for s in f.sessions:
        if _missed(s, r):
            yield _fill(r, fired=s.fired, reps=s.reps, **_session_fields(s))


def _hamstrings_led(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    for s in f.sessions:
        if _led(s, r):
            yield _fill(r, led=s.hamstrings_led, paired=s.paired,
                        onset_error_ms=_num(ONSET_ERROR_MS), **_session_fields(s))


def _uneven_reps(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    for s in f.sessions:
        if _uneven(s, r):
            yield _fill(r, cv=f"{(s.peak_cv or 0.0) * 100:.0f}%", **_session_fields(s))


def _other_phase_exercise(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    for s in f.sessions:
        other = book.phase_of_label(s.exercise)
        if f.phase is not None and other is not None and other != f.phase:
            yield _fill(r, exercise_phase=other, **_phase_fields(f, book), **_session_fields(s))


def _session_went_well(f: DayFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    flags = (book.rule("glutes_missed"), book.rule("hamstrings_led"), book.rule("uneven_reps"))
    for s in f.sessions:
        if s.reps < r.params["min_reps"] or s.fired is None:
            continue
        if _missed(s, flags[0]) or _led(s, flags[1]) or _uneven(s, flags[2]):
            continue
        firing = (f", and before the hamstrings on {s.glutes_led} of {s.paired}"
                  if s.glutes_led else "")
        yield _fill(r, fired=s.fired, reps=s.reps, firing=firing, **_session_fields(s))


DAY_CHECKS: dict[str, DayCheck] = {
    "no_thigh_data": _no_thigh_data,
    "wear_longer": _wear_longer,
    "break_up_sitting": _break_up_sitting,
    "sitting_over_goal": _sitting_over_goal,
    "too_few_breaks": _too_few_breaks,
    "pain_high": _pain_high,
    "do_exercises": _do_exercises,
    "exercises_without_emg": _exercises_without_emg,
    "glutes_missed": _glutes_missed,
    "hamstrings_led": _hamstrings_led,
    "uneven_reps": _uneven_reps,
    "other_phase_exercise": _other_phase_exercise,
    "session_went_well": _session_went_well,
}


def _run(book: RuleBook, scope: Scope, checks: Mapping[str, Callable[..., Iterator[str]]],
         facts: DayFacts | WeekFacts, fallback: str) -> list[Step]:
    steps: list[Step] = []
    for rule in book.rules:
        if rule.scope != scope or not rule.enabled or rule.id == fallback:
            continue
        kind = RULE_FIELDS[rule.id][1]
        steps += [Step(rule.id, text, kind) for text in checks[rule.id](facts, rule, book)]
    last = book.rule(fallback)
    if last.enabled and not any(s.kind == "advice" for s in steps):
        steps.append(Step(last.id, _fill(last), "none"))
    return steps


def day_steps(facts: DayFacts, book: RuleBook | None = None) -> list[Step]:
    """The day's next steps, in the order of the rules table.

    When no advice rule applies, the ``nothing_to_change`` rule says so (feedback on a good
    session does not count as advice).
    """
    return _run(book or load_rules(), "day", DAY_CHECKS, facts, "nothing_to_change")


# --------------------------------------------------------------------------- week rules


def _busiest_window(bouts: list[Bout], hours: int = 2) -> str:
    """``"between 13:00 and 15:00"``: the clock window in which most bouts started."""
    starts = [b.start.hour + b.start.minute / 60 for b in bouts]
    best = max(range(24), key=lambda h: (sum(h <= s < h + hours for s in starts), -h))
    return f"between {best:02d}:00 and {(best + hours) % 24:02d}:00"


def _week_wear_longer(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.valid_days < r.params["min_valid_days"]:
        yield _fill(r, valid_days=f.valid_days, days=f.days)


def _week_break_up_sitting(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    long = _long(f.bouts, r.params["long_bout_min"])
    if not long or f.days_with_thigh == 0:
        return
    per_day = len(long) / f.days_with_thigh
    if per_day >= r.params["min_per_day"]:
        top = max(long, key=lambda b: b.minutes)
        yield _fill(r, n_long=len(long), days=f.days, per_day=f"{per_day:.1f}",
                    days_with_data=f.days_with_thigh,
                    window=_busiest_window(long),
                    longest=f"{top.start:%a %d %b} {top.clock()} ({hm(top.minutes)})")


def _week_sitting_over_goal(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    goal, mean = f.goal_sitting_min, f.sitting_min_mean
    if (goal and mean is not None and f.valid_days >= r.params["min_valid_days"]
            and mean > goal):
        yield _fill(r, sitting=hm(mean), valid_days=f.valid_days, over=hm(mean - goal),
                    goal=hm(goal))


def _week_exercise_more(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.phase is not None and f.has_emg and f.exercise_days < r.params["target_days"]:
        yield _fill(r, exercise_days=f.exercise_days, days=f.days, **_phase_fields(f, book))


def _week_other_phase_exercise(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.phase is None:
        return
    other = [label for label in f.exercises
             if book.phase_of_label(label) not in (None, f.phase)]
    if other:
        names = sorted({_exercise_name(label) for label in other})
        yield _fill(r, n_other=len(other), sessions=len(f.exercises), labels=_and(names),
                    **_phase_fields(f, book))


def _week_glutes_missed(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.reps >= r.params["min_reps"] and f.fired < r.params["fired_share_min"] * f.reps:
        yield _fill(r, fired=f.fired, reps=f.reps)


def _week_hamstrings_led(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.paired >= r.params["min_paired"] and (
        f.hamstrings_led >= r.params["led_share_min"] * f.paired and f.hamstrings_led > 0
    ):
        yield _fill(r, led=f.hamstrings_led, paired=f.paired,
                    onset_error_ms=_num(ONSET_ERROR_MS))


def _week_pain_high(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    worst = max(f.pain, key=lambda p: (p[2], p[0]), default=None)
    if worst and worst[2] >= r.params["pain_min"]:
        yield _fill(r, site=worst[1], rating=worst[2], date=f"{worst[0]:%a %d %b}")


def _week_ready(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.ready is True and f.phase is not None:
        nxt = book.phases.get(f.phase + 1)
        yield _fill(r, next_step=f.next_step, phase=f.phase,
                    next_exercises=_and(list(nxt.exercises)) if nxt else "a maintenance routine")


def _week_not_ready(f: WeekFacts, r: Rule, book: RuleBook) -> Iterator[str]:
    if f.ready is False and f.phase is not None:
        yield _fill(r, phase=f.phase, not_met=_and(list(f.not_met)))


WEEK_CHECKS: dict[str, Callable[[WeekFacts, Rule, RuleBook], Iterator[str]]] = {
    "week_wear_longer": _week_wear_longer,
    "week_break_up_sitting": _week_break_up_sitting,
    "week_sitting_over_goal": _week_sitting_over_goal,
    "week_exercise_more": _week_exercise_more,
    "week_other_phase_exercise": _week_other_phase_exercise,
    "week_glutes_missed": _week_glutes_missed,
    "week_hamstrings_led": _week_hamstrings_led,
    "week_pain_high": _week_pain_high,
    "week_ready": _week_ready,
    "week_not_ready": _week_not_ready,
}


def week_steps(facts: WeekFacts, book: RuleBook | None = None) -> list[Step]:
    """The week's next steps, in the order of the rules table."""
    return _run(book or load_rules(), "week", WEEK_CHECKS, facts, "week_nothing_to_change")


# --------------------------------------------------------------------------- page


def steps_html(steps: list[Step], title: str = "Next steps") -> str:
    """The next-steps block: a heading and one list item per step (text escaped)."""
    items = "".join(
        f"<li class='{s.kind}' data-rule='{html.escape(s.rule)}'>{html.escape(s.text)}</li>"
        for s in steps
    )
    return f"<section class='next'><h2>{html.escape(title)}</h2><ul>{items}</ul></section>"
