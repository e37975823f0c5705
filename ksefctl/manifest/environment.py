"""KSeF environments: names to base URLs, and which URLs are acceptable."""

from __future__ import annotations

from urllib.parse import urlsplit

from ksefctl.vocabulary import is_loopback

__all__ = ["EnvironmentProblem", "is_loopback", "resolve_environment"]

KNOWN: dict[str, str] = {
    "test": "https://api-test.ksef.mf.gov.pl/v2",
    "demo": "https://api-demo.ksef.mf.gov.pl/v2",
    "prod": "https://api.ksef.mf.gov.pl/v2",
}
CUSTOM_NAME = "custom"


class EnvironmentProblem(ValueError):
    """``field`` ("environment" or "name") names the setting at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def resolve_environment(environment: str, name: str | None = None) -> tuple[str, str]:
    """``(name, base_url)`` for ``spec.ksef``; raises EnvironmentProblem."""
    if environment in KNOWN:
        if name is not None and name != environment:
            raise EnvironmentProblem(
                "name",
                f"only a URL environment can be renamed; {environment} is always {environment}",
            )
        return environment, KNOWN[environment]
    return (name or CUSTOM_NAME), check_base_url(environment)


def check_base_url(url: str) -> str:
    """The URL without a trailing slash; plain http only towards this machine."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EnvironmentProblem("environment", f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnvironmentProblem(
            "environment", "must be test, demo, prod or an http(s) URL with a host"
        )
    if parts.username is not None or parts.password is not None:
        raise EnvironmentProblem("environment", "URL must not carry credentials")
    if parts.query or parts.fragment:
        raise EnvironmentProblem("environment", "URL must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # Tokens travel in these requests; cleartext is tolerable only on this machine.
        raise EnvironmentProblem(
            "environment",
            f"http is allowed only for loopback hosts; use https://{parts.netloc}{parts.path}",
        )
    del port
    return url.rstrip("/")
