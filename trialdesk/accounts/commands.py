"""``trialdesk user ...``: accounts, roles and API tokens from the terminal (all audited)."""

from __future__ import annotations

import click


def _user(username: str):
    from .models import User

    user = User.objects.filter(username=username).first()
    if user is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    return user


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def user() -> None:
    """Users, roles and API tokens."""


@user.command("create")
@click.argument("username")
@click.option("--email", default="")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.password_option()
def create(username: str, email: str, first_name: str, last_name: str, password: str) -> None:
    """Create a user."""
    from .services import AccountError, create_user

    try:
        create_user(username, password, email=email, first_name=first_name, last_name=last_name)
    except AccountError as exc:
        raise _fail(exc) from exc
    click.echo(f"created {username}")


@user.command("grant")
@click.argument("username")
@click.option("--study", "study_code", required=True)
@click.option("--role", required=True)
@click.option("--site", "site_code", default=None)
def grant(username: str, study_code: str, role: str, site_code: str | None) -> None:
    """Give a user a role in a study (at a site for site roles)."""
    from trialdesk.protocol.models import Study

    from .models import Role
    from .services import AccountError, grant_role

    study = Study.objects.filter(code=study_code).first()
    if study is None:
        raise click.BadParameter(f"no study {study_code!r}", param_hint="--study")
    if role not in Role.values:
        raise click.BadParameter(f"{role!r}; one of {', '.join(Role.values)}", param_hint="--role")
    site = None
    if site_code:
        site = study.sites.filter(code=site_code).first()
        if site is None:
            raise click.BadParameter(f"no site {site_code!r} in {study_code}", param_hint="--site")
    try:
        grant_role(_user(username), study, role, site=site, by=None)
    except AccountError as exc:
        raise _fail(exc) from exc
    click.echo(f"{username}: {role} in {study_code}" + (f" at {site_code}" if site_code else ""))


@user.command("deactivate")
@click.argument("username")
@click.option("--reason", required=True)
def deactivate(username: str, reason: str) -> None:
    """End a user's access (users are never deleted)."""
    from .services import set_active

    set_active(_user(username), False, by=None, reason=reason)
    click.echo(f"{username} deactivated")


@user.command("password")
@click.argument("username")
@click.password_option()
def password(username: str, password: str) -> None:
    """Set a user's password."""
    from .services import AccountError, set_password

    try:
        set_password(_user(username), password, by=None)
    except AccountError as exc:
        raise _fail(exc) from exc
    click.echo(f"password changed for {username}")


@user.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for.")
def token(username: str, name: str) -> None:
    """Create a personal API token; it is printed once."""
    from .services import create_api_token

    _, plain = create_api_token(_user(username), name, by=None)
    click.echo(plain)
