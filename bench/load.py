"""Form saves under load: 20 simulated coordinators against the served app.

``python bench/load.py`` prepares a fresh installation (``trialdesk setup``, one coordinator
account and a few planned subjects per simulated coordinator, every ITCH_PAIN form saved once),
serves it with ``trialdesk serve`` (gunicorn) on a free loopback port, and lets every simulated
coordinator log in through the login page and open one form (not measured: the server's
workers warm up), then, once all have, for a bounded number of saves, GET one of its own
subjects' ITCH_PAIN forms and POST it back with changed scores and a reason for change (the
audit trail records every change). It prints the throughput and the
p50/p95 latency of the POSTs (the save, answered by its redirect) and of the GETs, on SQLite and
on a PostgreSQL database it creates and drops itself, and, as the reference, the same saves done
in-process through ``trialdesk.capture.records.save_form`` (no HTTP, one thread).

Two load patterns run by default, one after the other on the same server: the stress run, where
every coordinator saves again as soon as its previous save is answered (``--think 0``), and the
realistic one, where it pauses between saves for a time drawn uniformly between 1 and 3 seconds
(``--think 1-3``) from a generator seeded with ``--seed`` and the coordinator's number, so that
two runs offer the same load. ``--serve 4x1`` (repeatable) serves with 4 gunicorn workers of 1
thread instead of ``trialdesk serve``'s defaults, to compare configurations (``--rounds`` goes
through them several times). Each run prints the machine's load average before and after:
other processes share the cores.

``--quick`` runs a short SQLite-only pass (3 coordinators, 4 saves each).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "trialdesk.cli"]
PASSWORD = "bench-load-password-5520"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
FORM = "ITCH_PAIN"
SUBJECTS_PER_COORDINATOR = 2
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class BenchError(RuntimeError):
    """A step of the benchmark failed (server start, login, preparation)."""


@dataclass
class Tally:
    """Latencies (seconds) of the saves and the failures, shared by the coordinator threads."""

    latencies: list[float] = field(default_factory=list)
    pages: list[float] = field(default_factory=list)
    first: float = float("inf")
    last: float = 0.0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float | None, failure: str = "", *, started: float = 0.0) -> None:
        with self.lock:
            if seconds is not None:
                self.latencies.append(seconds)
                self.first = min(self.first, started)
                self.last = max(self.last, started + seconds)
            if failure:
                self.failures.append(failure)


# --- preparation and in-process reference (run in a child process under django.setup()) ---


def _eligible(index: int) -> dict[str, object]:
    """Screening data of an eligible NS-DUPI candidate (born on a different day each)."""
    birth = dt.date(1980, 1, 1) + dt.timedelta(days=index)
    never = "never"
    return {
        "screening_date": (dt.date.today() - dt.timedelta(days=45)).isoformat(),
        "birth_date": birth.isoformat(),
        "sex": "M" if index % 2 else "F",
        "social_insurance": True,
        "ns_clinical_diagnosis": True,
        "lekti_staining": "absent",
        "nasa_total": 7,
        "able_to_complete_questionnaires": True,
        "informed_consent_signed": True,
        "dupilumab_hypersensitivity": False,
        "usual_treatment_changed_on": never,
        "last_topical_calcineurin_inhibitor": never,
        "last_oral_immunosuppressant": never,
        "last_oral_retinoid": never,
        "last_phototherapy": never,
        "last_biologic": never,
        "last_investigational_drug": never,
        "last_systemic_antibiotic": never,
        "last_skin_infection_systemic_therapy": never,
        "condition_impairing_evaluation": False,
        "immunosuppression_history": False,
        "current_infection": False,
        "questionnaire_incapacity": False,
    }


def prepare(coordinators: int) -> dict[str, list[list[str]]]:
    """Create the coordinators, their subjects and visits, and save every ITCH_PAIN form once.

    Returns
    -------
    dict
        Username to the ``[subject_id, visit]`` pairs of its forms.
    """
    from trialdesk.accounts.models import Role
    from trialdesk.accounts.services import create_user, grant_role
    from trialdesk.capture.records import save_form
    from trialdesk.capture.schedule import plan_visits
    from trialdesk.protocol.definitions import study_definition
    from trialdesk.protocol.models import Study
    from trialdesk.screening.services import screen

    study = Study.objects.get(code="ns-dupi")
    site = study.sites.get(code="TLS")
    visits = [v for v, forms in study_definition(study).schedule.items() if FORM in forms]
    d0 = dt.date.today() - dt.timedelta(days=200)
    plan: dict[str, list[list[str]]] = {}
    for number in range(coordinators):
        user = create_user(f"bench.coordinator{number:02d}", PASSWORD)
        grant_role(user, study, Role.COORDINATOR, site=site, by=None)
        pairs: list[list[str]] = []
        for k in range(SUBJECTS_PER_COORDINATOR):
            subject = screen(study, site, _eligible(number * 10 + k), by=user).subject
            plan_visits(subject, d0, by=user)
            for visit in visits:
                save_form(
                    subject, FORM, {"pruritus_score": 5, "pain_score": 3}, by=user, visit_code=visit
                )
                pairs.append([subject.subject_id, visit])
        plan[user.username] = pairs
    return plan


def direct(plan: dict[str, list[list[str]]], saves: int) -> list[float]:
    """Latencies of ``saves`` changes saved through ``save_form`` in this process, one thread."""
    from trialdesk.accounts.models import User
    from trialdesk.capture.records import save_form
    from trialdesk.screening.models import Subject

    work = [(User.objects.get(username=u), s, v) for u, pairs in plan.items() for s, v in pairs]
    subjects = {
        s.subject_id: s for s in Subject.objects.filter(subject_id__in={w[1] for w in work})
    }
    latencies = []
    for index in range(saves):
        user, subject_id, visit = work[index % len(work)]
        values = {"pruritus_score": index % 10, "pain_score": (index + 3) % 8}
        start = time.perf_counter()
        save_form(
            subjects[subject_id],
            FORM,
            values,
            by=user,
            visit_code=visit,
            reason=f"in-process change {index}",
        )
        latencies.append(time.perf_counter() - start)
    return latencies


# --- the HTTP side ---


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)


def _status(
    opener: urllib.request.OpenerDirector, url: str, data: dict | None = None
) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Referer": url})  # noqa: S310
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _token(page: str, url: str) -> str:
    found = CSRF.search(page)
    if found is None:
        raise BenchError(f"no CSRF token on {url}")
    return found.group(1)


def login(base: str, username: str) -> urllib.request.OpenerDirector:
    """An opener holding the session of ``username``, logged in through the login page."""
    opener = _opener()
    url = f"{base}/login/"
    _, page = _status(opener, url)
    status, _ = _status(
        opener,
        url,
        {"csrfmiddlewaretoken": _token(page, url), "username": username, "password": PASSWORD},
    )
    if status != 302:
        raise BenchError(f"login of {username} answered {status}")
    return opener


@dataclass(frozen=True)
class Load:
    """How hard each simulated coordinator works: saves, pause between saves (drawn uniformly
    between ``think[0]`` and ``think[1]`` seconds), time limit."""

    saves: int
    think: tuple[float, float]
    seed: int
    until: float
    logged_in: threading.Barrier


def parse_serve(text: str) -> tuple[int, int]:
    """``"4x1"`` → 4 gunicorn workers of 1 thread each."""
    workers, _, threads = text.lower().partition("x")
    try:
        return int(workers), int(threads)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--serve {text!r}: expected WORKERSxTHREADS") from None


def parse_think(text: str) -> tuple[float, float]:
    """``"2"`` → (2, 2); ``"1-3"`` → (1, 3) seconds."""
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--think {text!r}: expected S or LO-HI seconds") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"--think {text!r}: need 0 <= LO <= HI")
    return bounds


def coordinator(
    base: str, username: str, pairs: list[list[str]], load: Load, tally: Tally, *, number: int
) -> None:
    """Log in, then GET and POST (changed scores, reason) the user's forms in turn."""
    pauses = random.Random(load.seed * 1000 + number)  # noqa: S311 - a load pattern, not a secret
    opener = login(base, username)
    subject_id, visit = pairs[0]
    _status(opener, f"{base}/studies/ns-dupi/subjects/{subject_id}/visits/{visit}/forms/{FORM}/")
    load.logged_in.wait(timeout=300)  # logged in and the server warmed up by one form page each
    for index in range(load.saves):
        if time.monotonic() > load.until:
            return
        if index and load.think[1] > 0:
            time.sleep(pauses.uniform(*load.think))
        subject_id, visit = pairs[index % len(pairs)]
        url = f"{base}/studies/ns-dupi/subjects/{subject_id}/visits/{visit}/forms/{FORM}/"
        start = time.perf_counter()
        status, page = _status(opener, url)
        with tally.lock:
            tally.pages.append(time.perf_counter() - start)
        if status != 200:
            tally.add(None, f"GET {status}")
            continue
        data = {
            "csrfmiddlewaretoken": _token(page, url),
            "action": "save",
            "visit": visit,
            "pruritus_score": str(index % 10),
            "pain_score": str((index + 5) % 8),
            "reason": f"transcription error {index}",
        }
        start = time.perf_counter()
        status, _ = _status(opener, url, data)
        elapsed = time.perf_counter() - start
        tally.add(elapsed, "" if status == 302 else f"POST {status}", started=start)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(env: dict[str, str], workers: int | None, threads: int | None) -> Iterator[str]:
    """``trialdesk serve`` on a free loopback port until the block ends; yields its URL."""
    port = _free_port()
    bind = f"127.0.0.1:{port}"
    args = [*CLI, "serve", "--bind", bind]
    if workers:
        args += ["--workers", str(workers)]
    if threads:
        args += ["--threads", str(threads)]
    server = subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://{bind}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise BenchError("the server did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _child(env: dict[str, str], *args: str) -> object:
    """Run this script's ``--child`` mode under ``env`` and return its JSON output."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env(var: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"TRIALDESK_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "trialdesk.settings"})
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped when the block ends."""
    import psycopg

    name = f"trialdesk_bench_load_{os.getpid()}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def summary(
    label: str, latencies: list[float], wall: float, failures: int, what: str = "saves"
) -> str:
    """One line: requests, throughput, p50 and p95 in ms."""
    if not latencies:
        return f"{label:<38} no {what} ({failures} failures)"
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return (
        f"{label:<38} {len(latencies):>5} {what:<5} {len(latencies) / wall:7.1f}/s  "
        f"p50 {statistics.median(ordered) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  "
        f"failures {failures}"
    )


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def drive(
    base: str,
    plan: dict[str, list[list[str]]],
    args: argparse.Namespace,
    think: tuple[float, float],
) -> Tally:
    """Every simulated coordinator in its own thread, saves starting once all are logged in."""
    tally = Tally()
    barrier = threading.Barrier(len(plan))
    load = Load(args.saves, think, args.seed, time.monotonic() + args.duration, barrier)
    threads = [
        threading.Thread(
            target=coordinator, args=(base, user, pairs, load, tally), kwargs={"number": number}
        )
        for number, (user, pairs) in enumerate(plan.items())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def run_backend(label: str, database_url: str | None, args: argparse.Namespace) -> None:
    """Set up and prepare one installation, then serve it with each server configuration in
    turn (``--rounds`` times) and load it with each think time; print the figures."""
    with tempfile.TemporaryDirectory(prefix="trialdesk-load-") as tmp:
        env = _env(Path(tmp), database_url)
        subprocess.run(
            [*CLI, "setup", "--no-demo-users"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            timeout=600,
        )
        plan = _child(env, "prepare", str(args.coordinators))
        for _round in range(args.rounds):
            for workers, threads in args.serve:
                server = f"{workers}×{threads}" if workers else "default"
                with served(env, workers, threads) as base:
                    for think in args.think:
                        before = load_average()
                        tally = drive(base, plan, args, think)
                        pause = "no pause" if think[1] == 0 else f"{think[0]:g}–{think[1]:g} s"
                        wall = max(tally.last - tally.first, 1e-9)
                        print(
                            summary(
                                f"{label}, HTTP, {server}, {pause}",
                                tally.latencies,
                                wall,
                                len(tally.failures),
                            )
                        )
                        print(summary("  its form page GETs", tally.pages, wall, 0, "GETs"))
                        print(f"  load average before {before}; after {load_average()}")
                        if tally.failures:
                            print(f"  failures: {sorted(set(tally.failures))}")
                        sys.stdout.flush()
        if args.direct:
            direct_saves = min(args.coordinators * args.saves, 400)
            latencies = _child(env, "direct", json.dumps(plan), str(direct_saves))
            print(summary(f"{label}, in-process save_form", latencies, sum(latencies), 0))
            sys.stdout.flush()


def child_main(mode: str, rest: list[str]) -> None:
    """The child process: ``prepare N`` or ``direct PLAN_JSON SAVES``; prints JSON."""
    import django

    django.setup()
    if mode == "prepare":
        print(json.dumps(prepare(int(rest[0]))))
    elif mode == "direct":
        print(json.dumps(direct(json.loads(rest[0]), int(rest[1]))))
    else:
        raise BenchError(f"unknown child mode {mode!r}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short SQLite-only smoke run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--coordinators", type=int, default=20)
    parser.add_argument("--saves", type=int, default=30, help="saves per coordinator")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds at most per backend")
    parser.add_argument(
        "--think",
        type=parse_think,
        action="append",
        help="pause between a coordinator's saves, S or LO-HI seconds; repeat for several runs "
        "(default: 0, then 1-3)",
    )
    parser.add_argument("--seed", type=int, default=20, help="seed of the pauses")
    parser.add_argument(
        "--serve",
        type=parse_serve,
        action="append",
        help="gunicorn WORKERSxTHREADS; repeat to compare (default: trialdesk serve's own)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times to go through --serve")
    parser.add_argument(
        "--no-direct", dest="direct", action="store_false", help="skip the in-process reference"
    )
    args = parser.parse_args()
    args.think = args.think or [(0.0, 0.0), (1.0, 3.0)]
    args.serve = args.serve or [(None, None)]
    if args.quick:
        args.backend, args.coordinators, args.saves = "sqlite", 3, 4
    print(
        f"form saves ({FORM}, audit trail on), {args.coordinators} simulated coordinators × "
        f"{args.saves} saves; load average {load_average()}"
    )
    if args.backend in ("sqlite", "both"):
        run_backend("SQLite", None, args)
    if args.backend in ("postgresql", "both"):
        with postgres_database() as url:
            run_backend("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
