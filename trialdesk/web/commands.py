"""``trialdesk setup``, ``trialdesk serve`` and ``trialdesk manage``."""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys

import click


@click.command()
@click.option(
    "--demo-users/--no-demo-users",
    default=True,
    show_default=True,
    help="Create one demo user per role (credentials printed once).",
)
@click.option(
    "--demo-password",
    envvar="TRIALDESK_DEMO_PASSWORD",
    default=None,
    help="Use this password for new demo users instead of random ones.",
)
def setup(demo_users: bool, demo_password: str | None) -> None:
    """Prepare this installation: database, translations, static files, studies, sites, users."""
    from django.conf import settings
    from django.core.management import call_command

    from trialdesk.protocol import StudyFileError
    from trialdesk.protocol.services import load_study_into_db

    from .demo_users import create_demo_users
    from .i18n import compile_catalogs

    var = settings.VAR_DIR
    var.mkdir(parents=True, exist_ok=True)
    key_file = var / "secret_key"
    if not os.environ.get("TRIALDESK_SECRET_KEY") and not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
        click.echo(f"secret key written to {key_file}")
    call_command("migrate", interactive=False, verbosity=0)
    click.echo("database migrated: " + settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1])
    compiled = compile_catalogs([p for p in settings.LOCALE_PATHS])
    click.echo(f"translations compiled: {len(compiled)} catalog(s)")
    call_command("collectstatic", interactive=False, verbosity=0)
    for study_dir in sorted(p.parent for p in settings.STUDIES_DIR.glob("*/study.yaml")):
        try:
            result = load_study_into_db(study_dir)
        except StudyFileError as exc:
            raise click.ClickException(f"study file {study_dir} is invalid:\n{exc}") from exc
        state = "loaded" if result.created else "already loaded"
        sites = ", ".join(s.code for s in result.study.sites.all())
        click.echo(f"study {result.study.code} v{result.version.version} {state} (sites: {sites})")
    if demo_users:
        created = create_demo_users(demo_password)
        if created:
            click.echo("\nDemo users (shown once; change them with `trialdesk user password`):")
            width = max(len(u) for u, _, _ in created)
            for username, password, role in created:
                click.echo(f"  {username:<{width}}  {password}  {role}")
        else:
            click.echo("demo users already exist (their passwords were printed when created)")


def _is_loopback(bind: str) -> bool:
    host = bind.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: gunicorn processes and threads per process. Chosen by ``bench/load.py`` on 2 cores (20
#: coordinators saving forms, SQLite): 3 × 2 had the lowest p95, 2 × 4 was close, 4 × 1 worst
#: (a single-threaded worker waiting for the database's write turn serves nothing else); see
#: docs/benchmarks.md. More cores: about one worker per core plus one.
DEFAULT_WORKERS = 3
DEFAULT_THREADS = 2


@click.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 64))
def serve(bind: str, workers: int, threads: int) -> None:
    """Serve the web app with gunicorn (static files by whitenoise).

    On a loopback address the app speaks plain HTTP (the local demo); anywhere else it expects
    to sit behind a TLS-terminating proxy and keeps secure cookies, HSTS and the HTTPS redirect.
    """
    env = dict(os.environ)
    if _is_loopback(bind) and "TRIALDESK_HTTPS" not in env:
        env["TRIALDESK_HTTPS"] = "0"
    click.echo(
        f"trialdesk serving on http://{bind}/ (gunicorn, {workers} workers × {threads} threads)",
        err=True,
    )
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "trialdesk.wsgi:application",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--access-logfile",
        "-",
    ]
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process by gunicorn


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def manage(args: tuple[str, ...]) -> None:
    """Run a Django management command (``trialdesk manage check --deploy``)."""
    from django.core.management import execute_from_command_line

    execute_from_command_line(["trialdesk manage", *args])
