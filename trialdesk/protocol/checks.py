"""How the parts of a study fit together: references, windows, ratios, expressions.

The schema (:mod:`trialdesk.protocol.schema`) checks each part alone; :func:`check_study` checks
the whole and returns one :class:`Finding` per problem, located by the key path of the
offending node, which the loader turns into a file and line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from .expressions import Expression, ValueType
from .schema import Endpoint, Form, Item, Study

Path = tuple[str | int, ...]

_REGISTRY_FORMATS = {
    "NCT": (r"NCT\d{8}", "NCT followed by 8 digits"),
    "EudraCT": (r"\d{4}-\d{6}-\d{2}", "YYYY-NNNNNN-CC"),
}
_NUMERIC = ("integer", "decimal")
_LAB_SUFFIXES = ("_value", "_unit", "_lln", "_uln")


@dataclass(frozen=True)
class Finding:
    """A problem of a valid-shaped study: where (key path), the offending name, and why."""

    path: Path
    name: str
    message: str


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class _Checker:
    study: Study
    broken: Mapping[str, Collection[str]]
    findings: list[Finding] = field(default_factory=list)

    def add(self, path: Path, name: str, message: str) -> None:
        self.findings.append(Finding(path, name, message))

    def is_broken(self, section: str, code: str) -> bool:
        return code in self.broken.get(section, ())

    def exists(self, section: str, code: str, known: Collection[str]) -> bool:
        return code in known or self.is_broken(section, code)

    def duplicates(self, section: str, codes: list[str], key: str, kind: str) -> None:
        seen: dict[str, int] = {}
        for index, code in enumerate(codes):
            if code in seen:
                self.add(
                    (section, index, key),
                    code,
                    f"duplicate {kind} {code!r} (first declared as {section} #{seen[code] + 1})",
                )
            else:
                seen[code] = index

    # ---------------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        self.check_header()
        self.check_arms_and_randomization()
        self.duplicates("sites", [site.code for site in self.study.sites], "code", "site")
        self.check_strata()
        self.check_visits()
        self.check_codelists()
        self.check_settings()
        self.check_forms()
        self.check_schedule()
        self.check_eligibility()
        self.check_edit_checks()
        self.check_dosing()
        self.check_endpoints()
        return self.findings

    def check_header(self) -> None:
        for key, value in self.study.registry_ids.items():
            pattern, shape = _REGISTRY_FORMATS.get(key, (None, ""))
            if pattern and not re.fullmatch(pattern, value):
                self.add(("registry_ids", key), key, f"{value!r} is not a {key} number ({shape})")

    def check_arms_and_randomization(self) -> None:
        study = self.study
        arms = [arm.code for arm in study.arms]
        self.duplicates("arms", arms, "code", "arm")
        if study.kind == "randomized":
            if len(study.arms) < 2 and not self.broken.get("arms"):
                self.add(("kind",), "arms", "a randomized study needs at least two arms")
            if study.randomization is None and "randomization" not in self.broken:
                self.add(("kind",), "randomization", "a randomized study needs a randomization")
        else:
            if study.arms:
                self.add(("arms",), "arms", "an observational study has no arms")
            if study.randomization is not None:
                self.add(
                    ("randomization",),
                    "randomization",
                    "an observational study has no randomization",
                )
            if study.dosing is not None:
                self.add(
                    ("dosing",),
                    "dosing",
                    "an observational study has no dosing regimen (record treatments in a form)",
                )
        randomization = study.randomization
        if randomization is None or not study.arms or self.broken.get("arms"):
            return
        total = sum(arm.ratio for arm in study.arms)
        ratio = ":".join(str(arm.ratio) for arm in study.arms)
        for index, size in enumerate(randomization.block_sizes):
            if size % total:
                self.add(
                    ("randomization", "block_sizes", index),
                    "block_sizes",
                    f"a block of {size} cannot hold the ratio {ratio} of arms "
                    f"{', '.join(arms)}: block sizes must be multiples of {total}",
                )
        strata = [stratum.code for stratum in study.strata]
        for index, code in enumerate(randomization.stratify_by):
            if not self.exists("strata", code, strata):
                self.add(
                    ("randomization", "stratify_by", index),
                    code,
                    f"unknown stratum {code!r}{_did_you_mean(code, strata)}",
                )

    def check_strata(self) -> None:
        strata = self.study.strata
        self.duplicates("strata", [stratum.code for stratum in strata], "code", "stratum")
        forms = {form.code: form for form in self.study.forms}
        for index, stratum in enumerate(strata):
            if stratum.source == "site":
                continue
            form_code, _, item_code = stratum.source.partition(".")
            form = forms.get(form_code)
            item = next((i for i in form.items if i.code == item_code), None) if form else None
            if self.is_broken("forms", form_code):
                continue
            if (
                item is None
                or form is None
                or form.repeating
                or item.data_type not in ("choice", "boolean")
            ):
                self.add(
                    ("strata", index, "source"),
                    stratum.source,
                    "a stratum source is 'site' or FORM.item, a choice or boolean item of a "
                    "non-repeating form",
                )

    def check_visits(self) -> None:
        visits = self.study.visits
        self.duplicates("visits", [visit.code for visit in visits], "code", "visit")
        for index in range(1, len(visits)):
            before, visit = visits[index - 1], visits[index]
            if visit.day <= before.day:
                self.add(
                    ("visits", index, "day"),
                    visit.code,
                    f"visits must be listed in order of day: {visit.code} (day {visit.day}) "
                    f"follows {before.code} (day {before.day})",
                )
            elif before.latest >= visit.earliest:
                self.add(
                    ("visits", index, "window_before"),
                    visit.code,
                    f"the window of {visit.code} (days {visit.earliest} to {visit.latest}) "
                    f"overlaps the window of {before.code} (days {before.earliest} to "
                    f"{before.latest})",
                )
        if not any(visit.day == 0 for visit in visits) and not self.broken.get("visits"):
            self.add(("visits",), "visits", "no visit at day 0: one visit is the reference (day 0)")

    def check_codelists(self) -> None:
        codelists = self.study.codelists
        self.duplicates("codelists", [c.code for c in codelists], "code", "code list")
        for index, codelist in enumerate(codelists):
            seen: set[str] = set()
            for position, item in enumerate(codelist.items):
                if item.code in seen:
                    self.add(
                        ("codelists", index, "items", position, "code"),
                        item.code,
                        f"duplicate code {item.code!r} in code list {codelist.code}",
                    )
                seen.add(item.code)

    def check_settings(self) -> None:
        for key, setting in self.study.settings.items():
            if setting.choices is None:
                continue
            values = setting.value if isinstance(setting.value, list) else [setting.value]
            for value in values:
                if value not in setting.choices:
                    allowed = ", ".join(map(repr, setting.choices))
                    self.add(
                        ("settings", key, "value"),
                        key,
                        f"{value!r} is not one of the choices ({allowed})",
                    )

    # ---------------------------------------------------------------------------------------
    def check_forms(self) -> None:
        forms = self.study.forms
        self.duplicates("forms", [form.code for form in forms], "code", "form")
        scheduled = {code for codes in self.study.schedule.values() for code in codes}
        for index, form in enumerate(forms):
            path: Path = ("forms", index)
            if form.code not in scheduled and form.code != self.study.screening_form:
                self.add(
                    path + ("code",),
                    form.code,
                    "form is neither in the schedule of activities nor the screening form",
                )
            self.check_form(path, form)

    def check_form(self, path: Path, form: Form) -> None:
        seen_groups: set[str] = set()
        seen_items: set[str] = set()
        for g, group in enumerate(form.item_groups):
            group_path = path + ("item_groups", g)
            if group.code in seen_groups:
                self.add(
                    group_path + ("code",),
                    group.code,
                    f"duplicate item group {group.code!r} in form {form.code}",
                )
            seen_groups.add(group.code)
            self.check_group(group_path, form, g)
            for i, item in enumerate(group.items):
                item_path = group_path + ("items", i)
                if item.code in seen_items:
                    self.add(
                        item_path + ("code",),
                        item.code,
                        f"duplicate item {item.code!r} in form {form.code}",
                    )
                seen_items.add(item.code)
                self.check_item(item_path, form, item)
        self.check_computed_cycles(path, form)

    def check_group(self, path: Path, form: Form, index: int) -> None:
        group = form.item_groups[index]
        if group.enabled_by is not None:
            setting = self.study.settings.get(group.enabled_by)
            if setting is None and not self.is_broken("settings", group.enabled_by):
                self.add(
                    path + ("enabled_by",),
                    group.enabled_by,
                    f"unknown setting {group.enabled_by!r}"
                    f"{_did_you_mean(group.enabled_by, self.study.settings)}",
                )
            elif setting is not None and not isinstance(setting.value, bool):
                self.add(
                    path + ("enabled_by",),
                    group.enabled_by,
                    "enabled_by needs a setting whose value is true or false",
                )
        elif not group.items:
            self.add(path + ("items",), group.code, "an item group needs at least one item")
        if group.lab_test is not None:
            codes = [item.code for item in group.items]
            for suffix in _LAB_SUFFIXES:
                if not any(code.endswith(suffix) for code in codes):
                    self.add(
                        path + ("lab_test",),
                        group.code,
                        f"laboratory group {group.lab_test} has no item ending in {suffix}",
                    )

    def check_item(self, path: Path, form: Form, item: Item) -> None:
        code, kind = item.code, item.data_type
        for key in ("min", "max"):
            if getattr(item, key) is not None and kind not in _NUMERIC:
                self.add(path + (key,), code, f"{key} applies only to integer and decimal items")
        if item.min is not None and item.max is not None and item.min > item.max:
            self.add(path + ("max",), code, f"min {item.min} is greater than max {item.max}")
        for key, kinds in (
            ("decimals", ("decimal",)),
            ("max_length", ("text",)),
            ("pattern", ("text",)),
        ):
            if getattr(item, key) is not None and kind not in kinds:
                self.add(path + (key,), code, f"{key} applies only to {' and '.join(kinds)} items")
        for key in ("allow_never", "partial"):
            if getattr(item, key) and kind != "date":
                self.add(path + (key,), code, f"{key} applies only to date items")
        if item.pattern is not None:
            try:
                re.compile(item.pattern)
            except re.error as error:
                self.add(path + ("pattern",), code, f"invalid pattern: {error}")
        codelists = [codelist.code for codelist in self.study.codelists]
        if kind == "choice" and item.codelist is None:
            self.add(path + ("data_type",), code, "a choice item needs a codelist")
        elif kind != "choice" and item.codelist is not None:
            self.add(path + ("codelist",), code, "codelist applies only to choice items")
        elif item.codelist is not None and not self.exists("codelists", item.codelist, codelists):
            self.add(
                path + ("codelist",),
                item.codelist,
                f"unknown code list {item.codelist!r}{_did_you_mean(item.codelist, codelists)}",
            )
        if item.computed is not None:
            if item.required:
                self.add(
                    path + ("required",),
                    code,
                    "a computed item is never typed, so it cannot be required",
                )
            self.check_expression(
                path + ("computed",),
                item.computed,
                form.code,
                self.study.names_for(form.code),
                item.value_type,
            )

    def check_computed_cycles(self, path: Path, form: Form) -> None:
        computed = {item.code: item.computed for item in form.items if item.computed is not None}
        for start in computed:
            stack, seen = [start], set()
            while stack:
                current = stack.pop()
                for name in computed[current].names:  # type: ignore[union-attr]
                    if name == start:
                        self.add(
                            path + ("code",),
                            start,
                            f"computed item {start!r} depends on itself (through {current!r})",
                        )
                        stack.clear()
                        break
                    if name in computed and name not in seen:
                        seen.add(name)
                        stack.append(name)

    def check_expression(
        self,
        path: Path,
        expression: Expression,
        owner: str,
        names: Mapping[str, object],
        expect: ValueType,
    ) -> None:
        for problem in expression.check(names, expect=expect):  # type: ignore[arg-type]
            name = problem.name or owner
            if problem.name and "." in problem.name:
                prefix, _, rest = problem.name.partition(".")
                if self.is_broken("forms", prefix) or (
                    prefix == "settings" and self.is_broken("settings", rest)
                ):
                    continue
            self.add(path, name, problem.message)

    # ---------------------------------------------------------------------------------------
    def check_schedule(self) -> None:
        visits = [visit.code for visit in self.study.visits]
        forms = [form.code for form in self.study.forms]
        for visit, codes in self.study.schedule.items():
            if not self.exists("visits", visit, visits):
                self.add(
                    ("schedule", visit),
                    visit,
                    f"unknown visit {visit!r}{_did_you_mean(visit, visits)}",
                )
            for position, code in enumerate(codes):
                if not self.exists("forms", code, forms):
                    self.add(
                        ("schedule", visit, position),
                        code,
                        f"unknown form {code!r}{_did_you_mean(code, forms)}",
                    )
                elif codes.index(code) != position:
                    self.add(
                        ("schedule", visit, position),
                        code,
                        f"form {code} is listed twice at visit {visit}",
                    )
        for index, visit in enumerate(self.study.visits):
            if not self.study.schedule.get(visit.code):
                self.add(
                    ("visits", index, "code"),
                    visit.code,
                    "visit has no forms in the schedule of activities",
                )

    def check_eligibility(self) -> None:
        study = self.study
        criteria = study.eligibility
        self.duplicates("eligibility", [criterion.id for criterion in criteria], "id", "criterion")
        forms = [form.code for form in study.forms]
        if study.screening_form is not None:
            if not self.exists("forms", study.screening_form, forms):
                self.add(
                    ("screening_form",),
                    study.screening_form,
                    f"unknown form {study.screening_form!r}"
                    f"{_did_you_mean(study.screening_form, forms)}",
                )
                return
            if self.is_broken("forms", study.screening_form):
                return
            if study.form(study.screening_form).repeating:
                self.add(
                    ("screening_form",),
                    study.screening_form,
                    "the screening form cannot be repeating",
                )
        elif criteria:
            self.add(
                ("eligibility",),
                "screening_form",
                "eligibility criteria need a screening_form whose items they read",
            )
            return
        names = study.eligibility_names()
        for index, criterion in enumerate(criteria):
            path: Path = ("eligibility", index)
            if criterion.applies_when is not None:
                self.check_expression(
                    path + ("applies_when",),
                    criterion.applies_when,
                    criterion.id,
                    names,
                    ValueType.BOOLEAN,
                )
            self.check_expression(
                path + ("condition",), criterion.condition, criterion.id, names, ValueType.BOOLEAN
            )

    def check_edit_checks(self) -> None:
        checks = self.study.edit_checks
        self.duplicates("edit_checks", [check.id for check in checks], "id", "edit check")
        forms = {form.code: form for form in self.study.forms}
        for index, check in enumerate(checks):
            path: Path = ("edit_checks", index)
            if self.is_broken("forms", check.form):
                continue
            form = forms.get(check.form)
            if form is None:
                self.add(
                    path + ("form",),
                    check.form,
                    f"unknown form {check.form!r}{_did_you_mean(check.form, forms)}",
                )
                continue
            codes = [item.code for item in form.items]
            if check.item is not None and check.item not in codes:
                self.add(
                    path + ("item",),
                    check.item,
                    f"unknown item {check.item!r} of form "
                    f"{form.code}{_did_you_mean(check.item, codes)}",
                )
            self.check_expression(
                path + ("expression",),
                check.expression,
                check.id,
                self.study.names_for(form.code),
                ValueType.BOOLEAN,
            )

    def check_dosing(self) -> None:
        dosing = self.study.dosing
        if dosing is None:
            return
        visits = {visit.code: (index, visit) for index, visit in enumerate(self.study.visits)}
        order: list[int] = []
        for code in dosing.units_per_visit:
            if code not in visits:
                if not self.is_broken("visits", code):
                    self.add(
                        ("dosing", "units_per_visit", code),
                        code,
                        f"unknown visit {code!r}{_did_you_mean(code, visits)}",
                    )
                return
            order.append(visits[code][0])
        if order != sorted(order):
            self.add(
                ("dosing", "units_per_visit"),
                "units_per_visit",
                "dosing visits must be listed in visit order",
            )
        last = visits[dosing.dosing_visits[-1]][1]
        if last.day != 7 * dosing.last_dosing_week:
            self.add(
                ("dosing", "last_dosing_week"),
                "last_dosing_week",
                f"the last dosing visit {last.code} is on day {last.day}, but "
                f"last_dosing_week {dosing.last_dosing_week} is day "
                f"{7 * dosing.last_dosing_week}",
            )
        if dosing.form is not None:
            forms = [form.code for form in self.study.forms]
            if not self.exists("forms", dosing.form, forms):
                self.add(
                    ("dosing", "form"),
                    dosing.form,
                    f"unknown form {dosing.form!r}{_did_you_mean(dosing.form, forms)}",
                )
                return
            for code in dosing.dosing_visits:
                if dosing.form not in self.study.schedule.get(code, []):
                    self.add(
                        ("dosing", "units_per_visit", code),
                        code,
                        f"dosing form {dosing.form} is not scheduled at dosing visit {code}",
                    )

    def check_endpoints(self) -> None:
        study = self.study
        endpoints = study.endpoints
        self.duplicates("endpoints", [endpoint.code for endpoint in endpoints], "code", "endpoint")
        forms = {form.code: form for form in study.forms}
        visits = [visit.code for visit in study.visits]
        for index, endpoint in enumerate(endpoints):
            path: Path = ("endpoints", index)
            if self.is_broken("forms", endpoint.form):
                continue
            form = forms.get(endpoint.form)
            if form is None:
                self.add(
                    path + ("form",),
                    endpoint.form,
                    f"unknown form {endpoint.form!r}{_did_you_mean(endpoint.form, forms)}",
                )
                continue
            codes = {item.code: item for item in form.items}
            item = codes.get(endpoint.item) if endpoint.item else None
            if endpoint.item is not None and item is None:
                self.add(
                    path + ("item",),
                    endpoint.item,
                    f"unknown item {endpoint.item!r} of "
                    f"form {form.code}{_did_you_mean(endpoint.item, codes)}",
                )
            if endpoint.item is None and endpoint.summary != "records":
                self.add(
                    path + ("summary",), endpoint.code, f"summary {endpoint.summary} needs an item"
                )
            for position, visit in enumerate(endpoint.visits):
                if not self.exists("visits", visit, visits):
                    self.add(
                        path + ("visits", position),
                        visit,
                        f"unknown visit {visit!r}{_did_you_mean(visit, visits)}",
                    )
            self.check_endpoint_change(path, endpoint, item)
            self.check_bands(path, endpoint)

    def check_endpoint_change(self, path: Path, endpoint: Endpoint, item: Item | None) -> None:
        baseline = endpoint.baseline_visit
        if baseline is not None and baseline not in endpoint.visits:
            self.add(
                path + ("baseline_visit",),
                baseline,
                "the baseline visit must be one of the endpoint's visits",
            )
        if endpoint.summary == "change_from_baseline":
            if baseline is None:
                self.add(
                    path + ("summary",),
                    endpoint.code,
                    "change_from_baseline needs a baseline_visit",
                )
            if item is not None and item.data_type not in _NUMERIC:
                self.add(path + ("item",), item.code, "a change from baseline needs a number item")
        elif endpoint.responder_change is not None:
            self.add(
                path + ("responder_change",),
                endpoint.code,
                "responder_change applies only to change_from_baseline endpoints",
            )

    def check_bands(self, path: Path, endpoint: Endpoint) -> None:
        bands = endpoint.bands
        for position, band in enumerate(bands):
            if band.min > band.max:
                self.add(
                    path + ("bands", position, "max"),
                    band.code,
                    f"band min {band.min} is greater than max {band.max}",
                )
            if position and band.min <= bands[position - 1].max:
                self.add(
                    path + ("bands", position, "min"),
                    band.code,
                    f"band {band.code} overlaps band {bands[position - 1].code}",
                )


def check_study(
    study: Study, *, broken: Mapping[str, Collection[str]] | None = None
) -> list[Finding]:
    """Every problem of how the parts of ``study`` fit together.

    Parameters
    ----------
    study : Study
        A study whose parts each passed the schema.
    broken : Mapping of section to codes, optional
        Codes of elements the loader dropped because their shape was wrong; references to them
        are not reported again.

    Returns
    -------
    list of Finding
        Empty for a consistent study.
    """
    return list(dict.fromkeys(_Checker(study, broken or {}).run()))
