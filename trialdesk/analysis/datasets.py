"""Analysis datasets built from the captured data, ADaM-like in naming.

:func:`build_datasets` returns one subject-level dataset (``ADSL``, one row per randomized
subject), one long dataset per endpoint (``ADNASA``, ``ADPRUR``, ``ADPAIN``, ``ADDLQI``,
``ADTEWL``, ``ADIGE``, ``ADMARK``: one row per subject, parameter and planned visit; ``ADINF``
and ``ADTCS``: one row per subject, summed over the endpoint's visits) and two safety datasets,
``ADAE`` (one row per adverse event) and ``ADLB`` (one row per safety laboratory result). The
variables, the derivations and the population rules are in ``docs/analysis_datasets.md``;
:func:`data_dictionary` returns the dictionary as data.

**Blinding.** A blinded build (``blinded=True``) reads the screening, capture, safety and
protocol tables only: randomized subjects are those with a visit schedule (planned at
randomization), the randomization date is their day-0 visit, and no arm column exists.
It never queries the randomization tables (allocations, the sealed list and kit list). An
unblinded build asks :func:`trialdesk.randomization.sealing.allocations_for` for the arms,
which refuses users the blinding policy does not allow.

Every dataset has the SHA-256 of its canonical CSV (columns in dictionary order, rows sorted by
subject and visit, ``\\n`` line ends, numbers with up to 12 significant digits, empty cells for
missing values).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.utils import timezone

from trialdesk.capture.models import (
    Discontinuation,
    FormRecord,
    ItemValue,
    ProtocolDeviation,
    ValueState,
    Visit,
    VisitStatus,
)
from trialdesk.lib.hashing import sha256_hex
from trialdesk.lib.partial_dates import PartialDateError, parse_partial_date
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Study
from trialdesk.safety.aesi import normalized
from trialdesk.safety.models import AdverseEvent, LabResult
from trialdesk.screening.models import Subject

from .plan import AnalysisPlanFile, PerProtocolRule


class DatasetError(ValueError):
    """A dataset that cannot be built; names the field and the value at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Variable:
    """One column of an analysis dataset: name, label, type and how it is derived."""

    name: str
    label: str
    type: str
    derivation: str
    unblinded_only: bool = False


@dataclass(frozen=True)
class EndpointSpec:
    """A long dataset: which study endpoint (form, item, visits) and how values are read."""

    dataset: str
    endpoint: str
    paramcd: str
    param: str
    kind: str = "visits"
    log10: bool = False


#: The endpoint datasets, in the order they are built.
ENDPOINT_SPECS: tuple[EndpointSpec, ...] = (
    EndpointSpec("ADNASA", "NASA_CHANGE", "NASA", "NASA total score (0-12)"),
    EndpointSpec("ADPRUR", "PRURITUS", "PRURITUS", "Pruritus intensity (0-10)"),
    EndpointSpec("ADPAIN", "PAIN", "PAIN", "Skin pain intensity (0-10)"),
    EndpointSpec("ADDLQI", "DLQI", "DLQI", "DLQI total (0-30)"),
    EndpointSpec("ADTEWL", "TEWL", "TEWL", "Transepidermal water loss (g/m2/h)"),
    EndpointSpec("ADIGE", "TOTAL_IGE", "IGE", "Total IgE (kU/L)"),
    EndpointSpec("ADIGE", "TOTAL_IGE", "LIGE", "log10 total IgE (log10 kU/L)", log10=True),
    EndpointSpec("ADMARK", "MARKERS", "", "Skin biopsy and microbiome markers", kind="markers"),
    EndpointSpec("ADINF", "SKIN_INFECTIONS", "INFCNT", "Skin infections", kind="sum"),
    EndpointSpec("ADTCS", "TCS_GRAMS", "TCSG", "Topical corticosteroids (g)", kind="sum"),
)

#: ADSL baseline columns: (column, dataset, PARAMCD).
BASELINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("NASABL", "NASA"),
    ("PRURBL", "PRURITUS"),
    ("PAINBL", "PAIN"),
    ("DLQIBL", "DLQI"),
    ("TEWLBL", "TEWL"),
    ("IGEBL", "IGE"),
)

_V = Variable
ADSL_VARIABLES: tuple[Variable, ...] = (
    _V("STUDYID", "Study identifier", "text", "The study's id (ns-dupi)."),
    _V("USUBJID", "Subject identifier", "text", "The pseudonymous subject id (TLS-001)."),
    _V("SITEID", "Site", "text", "Code of the subject's site."),
    _V(
        "STRATUM",
        "Randomization stratum",
        "text",
        "The stratification factor's level: the "
        "site code when the stratum's source is the site, else the screening form's item.",
    ),
    _V(
        "RANDDT",
        "Randomization date",
        "date",
        "Date of the day-0 visit (randomization and first dose), planned at randomization.",
    ),
    _V("TRT01P", "Planned treatment", "text", "Arm of the allocated list row.", True),
    _V(
        "TRT01A",
        "Actual treatment",
        "text",
        "TRT01P for a dosed subject, empty otherwise "
        "(kits are dispensed by arm inside the database).",
        True,
    ),
    _V(
        "RANDSEQ",
        "Randomization order within stratum",
        "integer",
        "Sequence number of the allocated list row.",
        True,
    ),
    _V("TRTSDT", "First dose date", "date", "Earliest administered_at of the DRUG records."),
    _V("TRTEDT", "Last dose date", "date", "Latest administered_at of the DRUG records."),
    _V(
        "NDOSEVIS",
        "Dosing visits with a dose",
        "integer",
        "Dosing visits of the study file with at least one DRUG record.",
    ),
    _V("ITTFL", "Intention-to-treat population flag", "Y/N", "Y for every randomized subject."),
    _V(
        "SAFFL",
        "Safety population flag",
        "Y/N",
        "Y when the subject has at least one DRUG record (received study drug).",
    ),
    _V(
        "PPROTFL",
        "Per-protocol population flag",
        "Y/N",
        "Y when ITT, at least the plan's "
        "minimum of dosing visits with a dose, the required assessment present (W16 NASA) and "
        "no major deviation.",
    ),
    _V("PPEXCL", "Reasons for per-protocol exclusion", "text", "Semicolon-separated."),
    _V(
        "EOSSTT",
        "End of study status",
        "text",
        "DISCONTINUED when a withdrawal or loss to "
        "follow-up is recorded, COMPLETED when the last visit is done, else ONGOING.",
    ),
    _V("DCSREAS", "Reason for discontinuation", "text", "withdrawn or lost_to_follow_up."),
    _V(
        "EOSDT",
        "End of study date",
        "date",
        "Discontinuation date, or date of the last visit when completed.",
    ),
    _V("LSTVSTDT", "Date of the last visit done", "date", "Latest done_on of the visits."),
    _V("NDOSES", "Doses given", "integer", "Number of DRUG records (syringes injected)."),
    _V(
        "PLNDOSES",
        "Doses planned",
        "integer",
        "Units of the study file's dosing regimen at the dosing visits that were due: done, "
        "missed, with a dose, or planned on or before the last visit done (visits not yet due "
        "and those after a discontinuation are not planned).",
    ),
    _V(
        "TRTDURD",
        "Days on treatment",
        "integer",
        "TRTEDT - TRTSDT + 1; empty without a dose.",
    ),
    _V(
        "COMPLPCT",
        "Compliance (%)",
        "number",
        "100 x NDOSES / PLNDOSES; empty when PLNDOSES is 0.",
    ),
) + tuple(
    _V(column, f"Baseline {paramcd}", "number", f"AVAL of the {paramcd} row flagged ABLFL.")
    for column, paramcd in BASELINE_COLUMNS
)

BDS_VARIABLES: tuple[Variable, ...] = (
    _V("STUDYID", "Study identifier", "text", "As ADSL."),
    _V("USUBJID", "Subject identifier", "text", "As ADSL."),
    _V("SITEID", "Site", "text", "As ADSL."),
    _V(
        "PARAMCD",
        "Parameter code",
        "text",
        "NASA, PRURITUS, PAIN, DLQI, TEWL, IGE, LIGE; the marker code in ADMARK.",
    ),
    _V("PARAM", "Parameter", "text", "Label of the parameter with its unit."),
    _V(
        "AVISIT",
        "Analysis visit",
        "text",
        "Visit code of the study file; one row per "
        "randomized subject and visit of the endpoint, captured or not.",
    ),
    _V("AVISITN", "Analysis visit (week)", "number", "Target day of the visit / 7."),
    _V("ADT", "Analysis date", "date", "Date the visit was done."),
    _V(
        "AVAL",
        "Analysis value",
        "number",
        "The item's value (log10 of it for LIGE); empty when not captured, not done or unknown.",
    ),
    _V("BASE", "Baseline value", "number", "AVAL of the subject's baseline-visit (D0) row."),
    _V(
        "CHG",
        "Change from baseline",
        "number",
        "AVAL - BASE on post-baseline rows; empty on the baseline row or when either is missing.",
    ),
    _V(
        "ABLFL",
        "Baseline record flag",
        "Y/empty",
        "Y on the baseline visit's row when AVAL is present.",
    ),
    _V(
        "ANL01FL",
        "Analysis record flag 01",
        "Y/empty",
        "Y when AVAL is present and, post-baseline, BASE too (the rows a change analysis uses).",
    ),
)

SUM_VARIABLES: tuple[Variable, ...] = (
    _V("STUDYID", "Study identifier", "text", "As ADSL."),
    _V("USUBJID", "Subject identifier", "text", "As ADSL."),
    _V("SITEID", "Site", "text", "As ADSL."),
    _V("PARAMCD", "Parameter code", "text", "INFCNT (skin infections) or TCSG (grams)."),
    _V("PARAM", "Parameter", "text", "Label of the parameter."),
    _V(
        "AVISIT", "Analysis visit", "text", "The endpoint's last visit (W16): the period D0 to W16."
    ),
    _V(
        "AVAL",
        "Analysis value",
        "number",
        "Sum over the endpoint's visits of the values "
        "captured (a 'no' to any_new_infection / tcs_used counts 0); empty without any record.",
    ),
    _V("BASE", "Baseline value", "number", "Value captured at D0 (the 4 weeks before D0)."),
    _V("NVISREC", "Visits with a value", "integer", "Endpoint visits contributing to AVAL."),
    _V(
        "EXPDAYS",
        "Follow-up days",
        "integer",
        "Days from RANDDT to the last contributing visit's date.",
    ),
    _V("EXPYRS", "Follow-up years", "number", "EXPDAYS / 365.25."),
    _V(
        "ANL01FL",
        "Analysis record flag 01",
        "Y/empty",
        "ADINF: Y when EXPDAYS > 0. ADTCS: Y when every visit of the endpoint has a value.",
    ),
)

#: The default of the plan's ``treatment_emergent_days``: adverse events starting up to this
#: many days after the last dose are treatment-emergent. NS-DUPI: 14 weeks, the protocol's
#: follow-up from the last dose (W14) to the W28 visit.
TEAE_WINDOW_DAYS = 98

ADAE_VARIABLES: tuple[Variable, ...] = (
    _V("STUDYID", "Study identifier", "text", "As ADSL."),
    _V("USUBJID", "Subject identifier", "text", "As ADSL."),
    _V("SITEID", "Site", "text", "As ADSL."),
    _V("ARM", "Actual treatment", "text", "TRT01A of ADSL.", True),
    _V("AESEQ", "Sequence number", "integer", "1, 2, ... per subject in the order of ASTDT."),
    _V("AEORIG", "Origin", "text", "ae_form, or infection_log for an event of the infection log."),
    _V("AETERM", "Reported term", "text", "The verbatim term (ae_term)."),
    _V(
        "AEDECOD",
        "Dictionary-derived term",
        "text",
        "The preferred term of the first keyword of SOC_TERMS found in the term (accents and "
        "case ignored); else the verbatim term with its first letter upper-cased.",
    ),
    _V(
        "AEBODSYS",
        "System organ class",
        "text",
        "MedDRA system organ class of the keyword of SOC_TERMS; 'Not coded' when no keyword "
        "matches (the AE form has no SOC item and the study is not MedDRA-coded).",
    ),
    _V("AESTDTC", "Start date as collected", "text", "Partial date text (2025-03)."),
    _V(
        "ASTDT",
        "Analysis start date",
        "date",
        "Complete start date; a partial one is imputed to the first day it may be, or to TRTSDT "
        "when TRTSDT lies within it and the event may still be going on at TRTSDT; no start: "
        "TRTSDT.",
    ),
    _V("ASTDTF", "Start date imputation flag", "text", "D: day imputed, M: month and day, Y: all."),
    _V("AENDTC", "End date as collected", "text", "Partial date text; empty when ongoing."),
    _V(
        "AENDT",
        "Analysis end date",
        "date",
        "Complete end date; a partial one is imputed to the last day it may be, or to EOSDT "
        "when EOSDT lies within it.",
    ),
    _V("AENDTF", "End date imputation flag", "text", "D: day imputed, M: month and day."),
    _V("ASTDY", "Study day of start", "integer", "ASTDT - TRTSDT (+1 when on or after TRTSDT)."),
    _V(
        "TRTEMFL",
        "Treatment-emergent flag",
        "Y/empty",
        "Y when TRTSDT <= ASTDT <= TRTEDT + the plan's treatment_emergent_days "
        f"(default and NS-DUPI: {TEAE_WINDOW_DAYS} days).",
    ),
    _V("AESER", "Serious", "Y/N", "ae_serious."),
    _V("AESEV", "Severity", "text", "MILD, MODERATE or SEVERE (ae_severity)."),
    _V("AETOXGR", "CTCAE grade", "number", "ae_ctcae_grade (1 to 5); empty when not given."),
    _V("AESEVFL", "Severe flag", "Y/empty", "Y when AESEV is SEVERE or AETOXGR >= 3."),
    _V("AEREL", "Relationship", "text", "ae_relationship code (not_related ... certain)."),
    _V("AERELFL", "Related flag", "Y/empty", "Y when AEREL is possible, probable or certain."),
    _V(
        "AESIFL",
        "Special interest flag",
        "Y/empty",
        "Y when the investigator said AESI, or did not answer and the term suggests one.",
    ),
    _V("AESICAT", "Special interest category", "text", "Code of code list AESI."),
    _V("AEACN", "Action taken with study drug", "text", "ae_action code."),
    _V("AEDISFL", "Leading to discontinuation", "Y/empty", "Y when AEACN is withdrawn."),
    _V("AEOUT", "Outcome", "text", "ae_outcome code."),
    _V("AESDTH", "Results in death", "Y/empty", "Y when the outcome is fatal or sae_death."),
)

ADLB_VARIABLES: tuple[Variable, ...] = (
    _V("STUDYID", "Study identifier", "text", "As ADSL."),
    _V("USUBJID", "Subject identifier", "text", "As ADSL."),
    _V("SITEID", "Site", "text", "As ADSL."),
    _V("ARM", "Actual treatment", "text", "TRT01A of ADSL.", True),
    _V("PARAMCD", "Parameter code", "text", "Laboratory test code (ALT, HGB, SODIUM, ...)."),
    _V("PARAM", "Parameter", "text", "The test's label in the study file, with its unit."),
    _V("AVISIT", "Analysis visit", "text", "Visit code of the laboratory form."),
    _V("AVISITN", "Analysis visit (week)", "number", "Target day of the visit / 7."),
    _V("ADT", "Analysis date", "date", "Date of the blood sample."),
    _V("AVAL", "Analysis value", "number", "The value in standard units (trialdesk.safety.units)."),
    _V("AVALU", "Analysis unit", "text", "The test's standard unit."),
    _V("ANRLO", "Normal range lower limit", "number", "LLN in standard units (form or site)."),
    _V("ANRHI", "Normal range upper limit", "number", "ULN in standard units (form or site)."),
    _V("ANRIND", "Reference range indicator", "text", "LOW, NORMAL or HIGH; empty without range."),
    _V("BASE", "Baseline value", "number", "AVAL of the subject's baseline (D0) result."),
    _V(
        "ATOXGR",
        "CTCAE grade",
        "number",
        "CTCAE v5.0 grade 0-4 of the safety module (NS-DUPI baseline rules, "
        "docs/safety_grading.md); empty when it cannot be computed.",
    ),
    _V("BTOXGR", "Baseline CTCAE grade", "number", "ATOXGR of the row flagged ABLFL."),
    _V("ABLFL", "Baseline record flag", "Y/empty", "Y on the D0 result when AVAL is present."),
    _V(
        "ANL01FL",
        "Post-baseline flag",
        "Y/empty",
        "Y on results after the baseline visit with AVAL present (the rows of worst grades).",
    ),
)

# MedDRA system organ classes of SOC_TERMS.
_INFECTIONS = "Infections and infestations"
_EYE = "Eye disorders"
_GENERAL = "General disorders and administration site conditions"
_NERVOUS = "Nervous system disorders"
_BLOOD = "Blood and lymphatic system disorders"
_IMMUNE = "Immune system disorders"
_SKIN = "Skin and subcutaneous tissue disorders"
_GASTRO = "Gastrointestinal disorders"
_MUSCULO = "Musculoskeletal and connective tissue disorders"
_RESPIRATORY = "Respiratory, thoracic and mediastinal disorders"

#: The verbatim-term keywords (lower case, accent-free; English and French) that give an
#: event its preferred term and MedDRA system organ class. Tried in order, first match wins:
#: "eczema herpeticum" is an infection before "eczema" is a skin disorder. Covers the events
#: expected in NS-DUPI (dupilumab's AESIs, the common events of its trials, Netherton flares).
SOC_TERMS: tuple[tuple[str, str, str], ...] = (
    ("eczema herpeticum", "Eczema herpeticum", _INFECTIONS),
    ("kaposi", "Eczema herpeticum", _INFECTIONS),
    ("herpes zoster", "Herpes zoster", _INFECTIONS),
    ("zona", "Herpes zoster", _INFECTIONS),
    ("herpe", "Oral herpes", _INFECTIONS),
    ("hsv", "Oral herpes", _INFECTIONS),
    ("cold sore", "Oral herpes", _INFECTIONS),
    ("bouton de fievre", "Oral herpes", _INFECTIONS),
    ("nasopharyngit", "Nasopharyngitis", _INFECTIONS),
    ("rhinopharyngit", "Nasopharyngitis", _INFECTIONS),
    ("common cold", "Nasopharyngitis", _INFECTIONS),
    ("upper respiratory", "Upper respiratory tract infection", _INFECTIONS),
    ("impetigo", "Impetigo", _INFECTIONS),
    ("cellulitis", "Cellulitis", _INFECTIONS),
    ("erysipel", "Erysipelas", _INFECTIONS),
    ("folliculit", "Folliculitis", _INFECTIONS),
    ("abscess", "Skin abscess", _INFECTIONS),
    ("abces", "Skin abscess", _INFECTIONS),
    ("skin infection", "Skin infection", _INFECTIONS),
    ("infection cutanee", "Skin infection", _INFECTIONS),
    ("conjunctivit", "Conjunctivitis", _EYE),
    ("conjonctivit", "Conjunctivitis", _EYE),
    ("keratit", "Keratitis", _EYE),
    ("blepharit", "Blepharitis", _EYE),
    ("injection site", "Injection site reaction", _GENERAL),
    ("injection-site", "Injection site reaction", _GENERAL),
    ("point d'injection", "Injection site reaction", _GENERAL),
    ("site d'injection", "Injection site reaction", _GENERAL),
    ("pyrexia", "Pyrexia", _GENERAL),
    ("fever", "Pyrexia", _GENERAL),
    ("fievre", "Pyrexia", _GENERAL),
    ("fatigue", "Fatigue", _GENERAL),
    ("headache", "Headache", _NERVOUS),
    ("cephalee", "Headache", _NERVOUS),
    ("eosinophil", "Eosinophilia", _BLOOD),
    ("hypersensitiv", "Hypersensitivity", _IMMUNE),
    ("hypersensibilit", "Hypersensitivity", _IMMUNE),
    ("serum sickness", "Serum sickness", _IMMUNE),
    ("maladie serique", "Serum sickness", _IMMUNE),
    ("anaphyla", "Anaphylactic reaction", _IMMUNE),
    ("pruritus", "Pruritus", _SKIN),
    ("prurit", "Pruritus", _SKIN),
    ("erythroderm", "Erythroderma", _SKIN),
    ("eczema", "Eczema", _SKIN),
    ("dermatit", "Dermatitis", _SKIN),
    ("rash", "Rash", _SKIN),
    ("netherton", "Netherton syndrome flare", _SKIN),
    ("nausea", "Nausea", _GASTRO),
    ("nausee", "Nausea", _GASTRO),
    ("diarrh", "Diarrhoea", _GASTRO),
    ("arthralg", "Arthralgia", _MUSCULO),
    ("cough", "Cough", _RESPIRATORY),
    ("toux", "Cough", _RESPIRATORY),
)
#: System organ class of a term no keyword of :data:`SOC_TERMS` matches.
NOT_CODED = "Not coded"


@dataclass(frozen=True)
class AnalysisDataset:
    """One dataset: its name, its rows and the SHA-256 of its canonical CSV."""

    name: str
    frame: pd.DataFrame = field(repr=False)

    def canonical_csv(self) -> str:
        """The dataset as canonical CSV text (the hashed form)."""
        return canonical_csv(self.frame)

    @property
    def sha256(self) -> str:
        return sha256_hex(self.canonical_csv())


@dataclass(frozen=True)
class DatasetBundle:
    """The datasets of one build, by name, and whether the build was blinded."""

    study: str
    blinded: bool
    datasets: Mapping[str, AnalysisDataset]

    def __getitem__(self, name: str) -> AnalysisDataset:
        if name not in self.datasets:
            raise DatasetError("dataset", f"no dataset {name!r} (have {', '.join(self.datasets)})")
        return self.datasets[name]

    def hashes(self) -> dict[str, str]:
        return {name: dataset.sha256 for name, dataset in self.datasets.items()}


def canonical_csv(frame: pd.DataFrame) -> str:
    """CSV with ``\\n`` line ends, empty missing cells and numbers to 12 significant digits."""
    return frame.to_csv(index=False, lineterminator="\n", na_rep="", float_format="%.12g")


def data_dictionary(blinded: bool = False) -> list[dict[str, str]]:
    """Every variable of every dataset: dataset, name, label, type, derivation.

    Parameters
    ----------
    blinded : bool
        Leave out the variables that exist only in unblinded builds (the arms).
    """
    rows = []
    tables = {"ADSL": ADSL_VARIABLES}
    for spec in ENDPOINT_SPECS:
        tables.setdefault(spec.dataset, SUM_VARIABLES if spec.kind == "sum" else BDS_VARIABLES)
    tables.update({"ADAE": ADAE_VARIABLES, "ADLB": ADLB_VARIABLES})
    for dataset, variables in tables.items():
        for var in variables:
            if blinded and var.unblinded_only:
                continue
            rows.append(
                {
                    "dataset": dataset,
                    "name": var.name,
                    "label": var.label,
                    "type": var.type,
                    "derivation": var.derivation,
                }
            )
    return rows


# --------------------------------------------------------------------------------------------
# Reading the captured data


@dataclass
class _Capture:
    """What the builders read, loaded once: subjects, visits, item values, exits, deviations."""

    subjects: list[Subject]
    visits: dict[int, dict[str, Visit]]
    values: dict[tuple[int, str, str], dict[str, Any]]
    drug_visits: dict[int, set[str]]
    drug_dates: dict[int, list[dt.date]]
    exits: dict[int, Discontinuation]
    deviations: dict[int, list[ProtocolDeviation]]


def _read_capture(
    study: Study, forms: Iterable[str], d0_code: str, drug_form: str, marker_form: str | None
) -> _Capture:
    subjects = list(
        Subject.objects.filter(study=study, visits__code=d0_code)
        .select_related("site")
        .order_by("subject_id")
    )
    ids = [s.pk for s in subjects]
    visits: dict[int, dict[str, Visit]] = defaultdict(dict)
    for visit in Visit.objects.filter(subject_id__in=ids):
        visits[visit.subject_id][visit.code] = visit
    values: dict[tuple[int, str, str], dict[str, Any]] = defaultdict(dict)
    rows = ItemValue.objects.filter(
        record__subject_id__in=ids,
        record__form__in=list(forms),
        record__repeating=False,
        state=ValueState.VALUE,
    ).values_list("record__subject_id", "record__form", "record__visit_code", "item", "value")
    for subject_id, form, visit_code, item, value in rows:
        values[(subject_id, form, visit_code)][item] = value
    drug_visits: dict[int, set[str]] = defaultdict(set)
    drug_dates: dict[int, list[dt.date]] = defaultdict(list)
    records = FormRecord.objects.filter(subject_id__in=ids, form=drug_form)
    for record in records.values("subject_id", "visit_code"):
        drug_visits[record["subject_id"]].add(record["visit_code"])
    administered = ItemValue.objects.filter(
        record__subject_id__in=ids,
        record__form=drug_form,
        item="administered_at",
        state=ValueState.VALUE,
    ).values_list("record__subject_id", "value")
    for subject_id, value in administered:
        if value:
            drug_dates[subject_id].append(dt.date.fromisoformat(str(value)[:10]))
    for key, numbers in _marker_values(ids, marker_form).items():
        values[key] = {"marker_value": sum(numbers) / len(numbers)}
    exits = {d.subject_id: d for d in Discontinuation.objects.filter(subject_id__in=ids)}
    deviations: dict[int, list[ProtocolDeviation]] = defaultdict(list)
    for deviation in ProtocolDeviation.objects.filter(subject_id__in=ids).select_related("visit"):
        deviations[deviation.subject_id].append(deviation)
    return _Capture(subjects, visits, values, drug_visits, drug_dates, exits, deviations)


def _marker_values(ids: list[int], form: str | None) -> dict[tuple[int, str, str], list[float]]:
    """Marker records (repeating) by (subject, ``FORM:MARKER``, visit): their values."""
    if form is None:
        return {}
    records: dict[int, dict[str, Any]] = defaultdict(dict)
    rows = ItemValue.objects.filter(
        record__subject_id__in=ids,
        record__form=form,
        record__repeating=True,
        item__in=["marker", "marker_value"],
        state=ValueState.VALUE,
    ).values_list("record_id", "record__subject_id", "record__visit_code", "item", "value")
    for record_id, subject_id, visit_code, item, value in rows:
        records[record_id].update({"subject": subject_id, "visit": visit_code, item: value})
    out: dict[tuple[int, str, str], list[float]] = defaultdict(list)
    for record in records.values():
        number = _number(record.get("marker_value"))
        if record.get("marker") and number is not None:
            out[(record["subject"], f"{form}:{record['marker']}", record["visit"])].append(number)
    return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Building


def build_datasets(
    study: Study, plan: AnalysisPlanFile, *, blinded: bool, user: Any = None
) -> DatasetBundle:
    """Build ADSL and the endpoint datasets of ``study`` from its captured data.

    Parameters
    ----------
    study : Study
        A randomized study loaded in the database.
    plan : AnalysisPlanFile
        The analysis plan (its per-protocol rule is applied).
    blinded : bool
        When True, no randomization table is read and there is no arm column.
    user : User, optional
        Required for an unblinded build: the arms are read through the blinding policy.

    Raises
    ------
    DatasetError
        An unblinded build without a user.
    BlindingError
        The user may not see the allocations of every site of the study.
    """
    definition = study_definition(study)
    d0_code = next(v.code for v in definition.visits if v.day == 0)
    endpoints = {e.code: e for e in definition.endpoints}
    forms = {endpoints[s.endpoint].form for s in ENDPOINT_SPECS if s.endpoint in endpoints}
    forms |= {"INFECT", "TCS"} & {f.code for f in definition.forms}
    drug_form = definition.dosing.form if definition.dosing else "DRUG"
    markers = endpoints.get("MARKERS")
    capture = _read_capture(study, forms, d0_code, drug_form, markers.form if markers else None)
    weeks = {v.code: v.day / 7 for v in definition.visits}
    long: dict[str, list[pd.DataFrame]] = defaultdict(list)
    for spec in ENDPOINT_SPECS:
        endpoint = endpoints.get(spec.endpoint)
        if endpoint is None:
            continue
        if spec.kind == "sum":
            long[spec.dataset].append(_sum_rows(study, spec, endpoint, capture, d0_code))
        elif spec.kind == "markers":
            for marker_spec, marker_endpoint in _marker_params(definition, spec, endpoint):
                rows = _visit_rows(study, marker_spec, marker_endpoint, capture, weeks)
                long[spec.dataset].append(rows)
        else:
            long[spec.dataset].append(_visit_rows(study, spec, endpoint, capture, weeks))
    datasets = {
        name: _typed(_sorted(pd.concat(parts, ignore_index=True))) for name, parts in long.items()
    }
    arms = None if blinded else _arms(study, user)
    units_per_visit = dict(definition.dosing.units_per_visit) if definition.dosing else {}
    adsl = _adsl(
        study,
        definition,
        capture,
        datasets=datasets,
        rule=plan.per_protocol,
        units_per_visit=units_per_visit,
        arms=arms,
    )
    ordered = {"ADSL": AnalysisDataset("ADSL", adsl)}
    ordered.update({name: AnalysisDataset(name, frame) for name, frame in datasets.items()})
    ordered["ADAE"] = AnalysisDataset(
        "ADAE", _adae(study, capture, adsl, window_days=plan.treatment_emergent_days)
    )
    ordered["ADLB"] = AnalysisDataset("ADLB", _adlb(study, definition, capture, adsl, weeks))
    return DatasetBundle(study.code, blinded, ordered)


_NUMERIC = {
    v.name
    for v in (*ADSL_VARIABLES, *BDS_VARIABLES, *SUM_VARIABLES, *ADAE_VARIABLES, *ADLB_VARIABLES)
    if v.type == "number"
}


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as floats (missing as NaN), flags and texts as objects (missing as None)."""
    for column in frame.columns:
        if column in _NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        elif not pd.api.types.is_numeric_dtype(frame[column]):
            cells = [None if _is_na(v) else v for v in frame[column]]
            frame[column] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def _is_na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in ("USUBJID", "PARAMCD", "AVISITN") if k in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _arms(study: Study, user: Any) -> dict[str, tuple[str, int]]:
    from trialdesk.accounts import policy
    from trialdesk.randomization.errors import BlindingError
    from trialdesk.randomization.sealing import allocations_for

    if user is None:
        raise DatasetError("user", "an unblinded build needs the user it is made for")
    for site in study.sites.all():
        if not (policy.may_see_site(user, site) and policy.may_see_allocation(user, study, site)):
            name = getattr(user, "username", user)
            raise BlindingError("user", f"{name!r} may not see the allocations at {site.code}")
    return {row["subject_id"]: (row["arm"], row["seq"]) for row in allocations_for(user, study)}


def _visit_rows(
    study: Study, spec: EndpointSpec, endpoint: Any, capture: _Capture, weeks: dict[str, float]
) -> pd.DataFrame:
    rows = []
    for subject in capture.subjects:
        visits = capture.visits[subject.pk]
        values = {
            code: _visit_value(spec, endpoint, capture, subject, visits.get(code))
            for code in endpoint.visits
        }
        base = values.get(endpoint.baseline_visit)
        for code in endpoint.visits:
            visit, aval = visits.get(code), values[code]
            is_base = code == endpoint.baseline_visit
            chg = aval - base if (not is_base and aval is not None and base is not None) else None
            usable = aval is not None and (is_base or base is not None)
            rows.append(
                {
                    "STUDYID": study.code,
                    "USUBJID": subject.subject_id,
                    "SITEID": subject.site.code,
                    "PARAMCD": spec.paramcd,
                    "PARAM": spec.param,
                    "AVISIT": code,
                    "AVISITN": weeks[code],
                    "ADT": visit.done_on if _done(visit) else None,
                    "AVAL": aval,
                    "BASE": base,
                    "CHG": chg,
                    "ABLFL": "Y" if is_base and aval is not None else None,
                    "ANL01FL": "Y" if usable else None,
                }
            )
    return pd.DataFrame(rows, columns=[v.name for v in BDS_VARIABLES])


def _marker_params(definition: Any, spec: EndpointSpec, endpoint: Any) -> list[tuple[Any, Any]]:
    """One parameter per code of the marker item's code list (``PARAMCD`` is the code).

    The marker endpoint's form is read as the pseudo-form ``MARKERS:<code>`` that
    :func:`_marker_values` fills with the mean of the subject's records at the visit.
    """
    codelist = definition.codelist(definition.item(endpoint.form, "marker").codelist)
    return [
        (
            EndpointSpec(spec.dataset, spec.endpoint, item.code, item.label.en),
            endpoint.model_copy(update={"form": f"{endpoint.form}:{item.code}"}),
        )
        for item in codelist.items
    ]


def _done(visit: Visit | None) -> bool:
    return visit is not None and visit.status == VisitStatus.DONE


def _visit_value(
    spec: EndpointSpec, endpoint: Any, capture: _Capture, subject: Subject, visit: Visit | None
) -> float | None:
    """The item's value at a done visit (log10 for LIGE; a non-positive value has none)."""
    if not _done(visit):
        return None
    raw = capture.values.get((subject.pk, endpoint.form, visit.code), {}).get(endpoint.item)
    aval = _number(raw)
    if spec.log10 and aval is not None:
        return math.log10(aval) if aval > 0 else None
    return aval


def _sum_rows(
    study: Study, spec: EndpointSpec, endpoint: Any, capture: _Capture, d0_code: str
) -> pd.DataFrame:
    rows = []
    for subject in capture.subjects:
        visits = capture.visits[subject.pk]
        d0 = visits[d0_code].planned_date
        total, count, last = 0.0, 0, None
        for code in endpoint.visits:
            visit = visits.get(code)
            if visit is None or visit.status != VisitStatus.DONE:
                continue
            value = _period_value(spec, capture.values.get((subject.pk, endpoint.form, code)))
            if value is None:
                continue
            total, count, last = total + value, count + 1, visit.done_on
        base = _period_value(spec, capture.values.get((subject.pk, endpoint.form, d0_code)))
        days = (last - d0).days if last is not None else 0
        flag = days > 0 if spec.paramcd == "INFCNT" else count == len(endpoint.visits)
        rows.append(
            {
                "STUDYID": study.code,
                "USUBJID": subject.subject_id,
                "SITEID": subject.site.code,
                "PARAMCD": spec.paramcd,
                "PARAM": spec.param,
                "AVISIT": endpoint.visits[-1],
                "AVAL": total if count else None,
                "BASE": base,
                "NVISREC": count,
                "EXPDAYS": days,
                "EXPYRS": days / 365.25,
                "ANL01FL": "Y" if flag else None,
            }
        )
    return pd.DataFrame(rows, columns=[v.name for v in SUM_VARIABLES])


def _period_value(spec: EndpointSpec, values: Mapping[str, Any] | None) -> float | None:
    """The count or grams of one visit's form; a 'no' to the gate question counts 0."""
    if not values:
        return None
    gate, item = (
        ("any_new_infection", "infection_count")
        if spec.paramcd == "INFCNT"
        else ("tcs_used", "tcs_grams")
    )
    if values.get(gate) is False:
        return 0.0
    return _number(values.get(item))


def _adsl(
    study: Study,
    definition: Any,
    capture: _Capture,
    *,
    datasets: Mapping[str, pd.DataFrame],
    rule: PerProtocolRule,
    units_per_visit: Mapping[str, int],
    arms: Mapping[str, tuple[str, int]] | None,
) -> pd.DataFrame:
    dosing_visits = list(units_per_visit)
    stratum_source = definition.strata[0].source if definition.strata else "site"
    baselines = _baselines(datasets)
    required = _required_present(datasets, rule)
    last_code = definition.visits[-1].code
    d0_code = next(v.code for v in definition.visits if v.day == 0)
    rows = []
    for subject in capture.subjects:
        visits = capture.visits[subject.pk]
        doses = sorted(capture.drug_dates.get(subject.pk, []))
        dosed = bool(capture.drug_visits.get(subject.pk))
        n_dose_visits = len(capture.drug_visits.get(subject.pk, set()) & set(dosing_visits))
        done = [v.done_on for v in visits.values() if v.status == VisitStatus.DONE and v.done_on]
        status, reason, end = _end_of_study(capture.exits.get(subject.pk), visits, last_code)
        exclusions = _pp_exclusions(
            rule, n_dose_visits, subject.subject_id in required, capture.deviations[subject.pk]
        )
        row: dict[str, Any] = {
            "STUDYID": study.code,
            "USUBJID": subject.subject_id,
            "SITEID": subject.site.code,
            "STRATUM": _stratum(stratum_source, subject, capture, d0_code),
            "RANDDT": visits[d0_code].planned_date,
        }
        if arms is not None:
            arm, seq = arms.get(subject.subject_id, (None, None))
            row.update({"TRT01P": arm, "TRT01A": arm if dosed else None, "RANDSEQ": seq})
        row.update(
            {
                "TRTSDT": doses[0] if doses else None,
                "TRTEDT": doses[-1] if doses else None,
                "NDOSEVIS": n_dose_visits,
                "ITTFL": "Y",
                "SAFFL": "Y" if dosed else "N",
                "PPROTFL": "N" if exclusions else "Y",
                "PPEXCL": "; ".join(exclusions) or None,
                "EOSSTT": status,
                "DCSREAS": reason,
                "EOSDT": end,
                "LSTVSTDT": max(done) if done else None,
                **_exposure(
                    doses, visits, units_per_visit, capture.drug_visits.get(subject.pk, set())
                ),
            }
        )
        for column, paramcd in BASELINE_COLUMNS:
            row[column] = baselines.get((paramcd, subject.subject_id))
        rows.append(row)
    columns = [v.name for v in ADSL_VARIABLES if arms is not None or not v.unblinded_only]
    return _typed(pd.DataFrame(rows, columns=columns))


def _stratum(source: str, subject: Subject, capture: _Capture, d0_code: str) -> Any:
    if source == "site":
        return subject.site.code
    form, _, item = source.partition(".")
    return capture.values.get((subject.pk, form, d0_code), {}).get(item)


def _baselines(datasets: Mapping[str, pd.DataFrame]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for frame in datasets.values():
        if "ABLFL" not in frame.columns:
            continue
        for row in frame.loc[frame["ABLFL"] == "Y"].itertuples(index=False):
            out[(row.PARAMCD, row.USUBJID)] = row.AVAL
    return out


def _required_present(datasets: Mapping[str, pd.DataFrame], rule: PerProtocolRule) -> set[str]:
    frame = datasets.get(rule.required_dataset)
    if frame is None:
        raise DatasetError("per_protocol.required_dataset", f"no dataset {rule.required_dataset!r}")
    hit = frame.loc[
        (frame["PARAMCD"] == rule.required_param)
        & (frame["AVISIT"] == rule.required_visit)
        & frame["AVAL"].notna()
    ]
    return set(hit["USUBJID"])


def _pp_exclusions(
    rule: PerProtocolRule,
    n_dose_visits: int,
    has_required: bool,
    deviations: list[ProtocolDeviation],
) -> list[str]:
    reasons = []
    if n_dose_visits < rule.min_dosing_visits:
        reasons.append(f"{n_dose_visits} dosing visits with a dose (< {rule.min_dosing_visits})")
    if not has_required:
        reasons.append(f"no {rule.required_param} at {rule.required_visit}")
    for deviation in deviations:
        visit_code = deviation.visit.code if deviation.visit else ""
        for major in rule.major_deviations:
            if deviation.kind == major.kind and (not major.visits or visit_code in major.visits):
                reasons.append(f"major deviation {deviation.kind} at {visit_code or '-'}")
    return reasons


def _end_of_study(
    exit_: Discontinuation | None, visits: Mapping[str, Visit], last_code: str
) -> tuple[str, str | None, dt.date | None]:
    if exit_ is not None:
        return "DISCONTINUED", exit_.kind, exit_.on
    last = visits.get(last_code)
    if last is not None and last.status == VisitStatus.DONE:
        return "COMPLETED", None, last.done_on
    return "ONGOING", None, None


def _dose_was_due(visit: Visit, dosed_visits: set[str], last_done: dt.date | None) -> bool:
    """A dosing visit was due when done, missed, dosed, or planned before a later visit done."""
    if visit.status in {VisitStatus.DONE, VisitStatus.MISSED} or visit.code in dosed_visits:
        return True
    return last_done is not None and visit.planned_date <= last_done


def _exposure(
    doses: list[dt.date],
    visits: Mapping[str, Visit],
    units_per_visit: Mapping[str, int],
    dosed_visits: set[str],
) -> dict[str, Any]:
    """NDOSES, PLNDOSES, TRTDURD and COMPLPCT of one subject (rules in ADSL_VARIABLES)."""
    done = [v.done_on for v in visits.values() if v.status == VisitStatus.DONE and v.done_on]
    last_done = max(done) if done else None
    planned = sum(
        int(units)
        for code, units in units_per_visit.items()
        if code in visits and _dose_was_due(visits[code], dosed_visits, last_done)
    )
    return {
        "NDOSES": len(doses),
        "PLNDOSES": planned,
        "TRTDURD": (doses[-1] - doses[0]).days + 1 if doses else None,
        "COMPLPCT": 100.0 * len(doses) / planned if planned else None,
    }


# --------------------------------------------------------------------------------------------
# Safety datasets: ADAE and ADLB


def code_term(term: str) -> tuple[str, str]:
    """The preferred term and system organ class of a verbatim term (:data:`SOC_TERMS`).

    >>> code_term("Conjonctivite allergique")
    ('Conjunctivitis', 'Eye disorders')
    >>> code_term("sprained ankle")
    ('Sprained ankle', 'Not coded')
    """
    text = normalized(term)
    for keyword, decod, soc in SOC_TERMS:
        if keyword in text:
            return decod, soc
    verbatim = " ".join(term.split())
    return verbatim[:1].upper() + verbatim[1:], NOT_CODED


def impute_start(
    start: str | None, *, first_dose: dt.date | None, end: str | None = None
) -> tuple[dt.date | None, str | None]:
    """ASTDT and ASTDTF of a (partial) start date.

    A complete date is kept. A partial date is imputed to the first day it may be, except that
    when the first dose falls inside it, and the event may still be going on at the first dose
    (its end, if any, may be on or after it), it is imputed to the first dose date: an event
    that may be treatment-emergent is counted as such. A missing start is the first dose date.
    The flag is ``D`` (day imputed), ``M`` (month and day) or ``Y`` (the whole date).
    """
    if not start:
        return first_dose, ("Y" if first_dose else None)
    date = parse_partial_date(start, "ae_start_date")
    if date.complete:
        return date.earliest(), None
    flag = "D" if date.month is not None else "M"
    ends_after = True
    if end:
        ends_after = first_dose is not None and (
            parse_partial_date(end, "ae_end_date").latest() >= first_dose
        )
    if first_dose is not None and date.earliest() <= first_dose <= date.latest() and ends_after:
        return first_dose, flag
    return date.earliest(), flag


def impute_end(
    end: str | None, *, end_of_study: dt.date | None
) -> tuple[dt.date | None, str | None]:
    """AENDT and AENDTF: a partial end is its last possible day, or the end of study in it."""
    if not end:
        return None, None
    date = parse_partial_date(end, "ae_end_date")
    if date.complete:
        return date.earliest(), None
    flag = "D" if date.month is not None else "M"
    if end_of_study is not None and date.earliest() <= end_of_study <= date.latest():
        return end_of_study, flag
    return date.latest(), flag


def treatment_emergent(
    start: dt.date | None,
    first_dose: dt.date | None,
    last_dose: dt.date | None,
    *,
    window_days: int = TEAE_WINDOW_DAYS,
) -> bool:
    """Whether an event starting on ``start`` is treatment-emergent (rule of TRTEMFL): from the
    first dose to ``window_days`` after the last, both days included."""
    if start is None or first_dose is None or last_dose is None:
        return False
    return first_dose <= start <= last_dose + dt.timedelta(days=window_days)


def study_day(date: dt.date | None, reference: dt.date | None) -> int | None:
    """Study day: 1 on the reference date, -1 the day before (there is no day 0)."""
    if date is None or reference is None:
        return None
    days = (date - reference).days
    return days + 1 if days >= 0 else days


_RELATED = {"possible", "probable", "certain"}


def _subject_dates(adsl: pd.DataFrame) -> dict[str, dict[str, Any]]:
    keep = ["TRTSDT", "TRTEDT", "EOSDT", *(["TRT01A"] if "TRT01A" in adsl.columns else [])]
    return adsl.set_index("USUBJID")[keep].to_dict("index")


def _adae(
    study: Study, capture: _Capture, adsl: pd.DataFrame, *, window_days: int = TEAE_WINDOW_DAYS
) -> pd.DataFrame:
    by_pk = {s.pk: s for s in capture.subjects}
    dates = _subject_dates(adsl)
    unblinded = "TRT01A" in adsl.columns
    events = AdverseEvent.objects.filter(study=study, subject_id__in=list(by_pk)).order_by("id")
    rows = []
    for event in events:
        subject = by_pk[event.subject_id]
        info = dates[subject.subject_id]
        first, last = _date_or_none(info["TRTSDT"]), _date_or_none(info["TRTEDT"])
        try:
            astdt, astdtf = impute_start(event.start, first_dose=first, end=event.end)
            aendt, aendtf = impute_end(event.end, end_of_study=_date_or_none(info["EOSDT"]))
        except PartialDateError as error:
            raise DatasetError(f"ADAE.{error.field}", f"{subject.subject_id}: {error}") from None
        decod, soc = code_term(event.term)
        grade = event.ctcae_grade
        severity = event.severity.upper() or None
        death = event.outcome == "fatal" or "sae_death" in (event.seriousness_criteria or [])
        row: dict[str, Any] = {
            "STUDYID": study.code,
            "USUBJID": subject.subject_id,
            "SITEID": subject.site.code,
        }
        if unblinded:
            row["ARM"] = info["TRT01A"]
        row.update(
            {
                "AESEQ": 0,
                "AEORIG": event.origin,
                "AETERM": event.term,
                "AEDECOD": decod,
                "AEBODSYS": soc,
                "AESTDTC": event.start or None,
                "ASTDT": astdt,
                "ASTDTF": astdtf,
                "AENDTC": event.end or None,
                "AENDT": aendt,
                "AENDTF": aendtf,
                "ASTDY": study_day(astdt, first),
                "TRTEMFL": "Y"
                if treatment_emergent(astdt, first, last, window_days=window_days)
                else None,
                "AESER": "Y" if event.serious else "N",
                "AESEV": severity,
                "AETOXGR": grade,
                "AESEVFL": "Y" if severity == "SEVERE" or (grade or 0) >= 3 else None,
                "AEREL": event.relationship or None,
                "AERELFL": "Y" if event.relationship in _RELATED else None,
                "AESIFL": "Y" if event.is_aesi else None,
                "AESICAT": event.aesi_code or None,
                "AEACN": event.action or None,
                "AEDISFL": "Y" if event.action == "withdrawn" else None,
                "AEOUT": event.outcome or None,
                "AESDTH": "Y" if death else None,
            }
        )
        rows.append(row)
    columns = [v.name for v in ADAE_VARIABLES if unblinded or not v.unblinded_only]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["_start"] = frame["ASTDT"].map(lambda d: d or dt.date.max)
        frame = frame.sort_values(["USUBJID", "_start", "AETERM"], kind="stable").drop(
            columns="_start"
        )
        frame["AESEQ"] = frame.groupby("USUBJID").cumcount() + 1
    return _typed(frame.reset_index(drop=True))


def _date_or_none(value: Any) -> dt.date | None:
    return None if _is_na(value) else value


_RANGE_INDICATOR = {"L": "LOW", "N": "NORMAL", "H": "HIGH"}


def _adlb(
    study: Study,
    definition: Any,
    capture: _Capture,
    adsl: pd.DataFrame,
    weeks: Mapping[str, float],
) -> pd.DataFrame:
    labels = {
        group.lab_test: group.label.en
        for form in definition.forms
        for group in form.item_groups
        if group.lab_test
    }
    by_pk = {s.pk: s for s in capture.subjects}
    dates = _subject_dates(adsl)
    unblinded = "TRT01A" in adsl.columns
    results = LabResult.objects.filter(study=study, subject_id__in=list(by_pk)).order_by("id")
    rows = []
    for result in results:
        subject = by_pk[result.subject_id]
        aval = _number(result.value_std)
        row: dict[str, Any] = {
            "STUDYID": study.code,
            "USUBJID": subject.subject_id,
            "SITEID": subject.site.code,
        }
        if unblinded:
            row["ARM"] = dates[subject.subject_id]["TRT01A"]
        unit = result.standard_unit or result.unit
        row.update(
            {
                "PARAMCD": result.test,
                "PARAM": f"{labels.get(result.test, result.test)} ({unit})",
                "AVISIT": result.visit_code,
                "AVISITN": weeks.get(result.visit_code),
                "ADT": timezone_date(result.sampled_at),
                "AVAL": aval,
                "AVALU": unit or None,
                "ANRLO": _number(result.lln_std),
                "ANRHI": _number(result.uln_std),
                "ANRIND": _RANGE_INDICATOR.get(result.flag),
                "BASE": None,
                "ATOXGR": result.grade if aval is not None else None,
                "BTOXGR": None,
                "ABLFL": "Y" if result.is_baseline and aval is not None else None,
                "ANL01FL": "Y" if not result.is_baseline and aval is not None else None,
            }
        )
        rows.append(row)
    columns = [v.name for v in ADLB_VARIABLES if unblinded or not v.unblinded_only]
    frame = pd.DataFrame(rows, columns=columns)
    base = frame.loc[frame["ABLFL"] == "Y"].drop_duplicates(["USUBJID", "PARAMCD"], keep="last")
    keys = zip(base["USUBJID"], base["PARAMCD"], strict=True)
    aval_of = dict(zip(keys, zip(base["AVAL"], base["ATOXGR"], strict=True), strict=True))
    pairs = list(zip(frame["USUBJID"], frame["PARAMCD"], strict=True))
    frame["BASE"] = [aval_of.get(k, (None, None))[0] for k in pairs]
    frame["BTOXGR"] = [aval_of.get(k, (None, None))[1] for k in pairs]
    return _typed(_sorted(frame))


def timezone_date(moment: dt.datetime | None) -> dt.date | None:
    """The local calendar date of an aware moment (the sampling day)."""
    if moment is None:
        return None
    return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
