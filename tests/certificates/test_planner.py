"""The certificate planner, pure: stories for each rule, then hypothesis over arbitrary worlds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ksefctl.manifest.certificates import CertificateMarker
from ksefctl.manifest.model import (
    AuthSpec,
    ContextId,
    DesiredCertificate,
    DesiredCertificates,
    DesiredContext,
    Policy,
    SecretRef,
)
from ksefctl.reconcile.certificates.admission import refusal
from ksefctl.reconcile.certificates.model import (
    CertificateChange,
    CertificateSecret,
    ObservedCertificate,
    ObservedCertificates,
)
from ksefctl.reconcile.certificates.planner import plan_context, renewal_due
from ksefctl.reconcile.model import Action

OWNER = "acme"
CONTEXT = ContextId("Nip", "5265877635")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
TEMPLATE = "ksef-certs/{environment}/{nip}/{certificate}"


def ref(name: str) -> SecretRef:
    return SecretRef("secret", f"ksef-certs/test/{CONTEXT.value}/{name}")


def declared(name: str = "login", **fields: object) -> DesiredCertificate:
    base = DesiredCertificate(
        owner=OWNER,
        context=CONTEXT,
        name=name,
        type="Authentication",
        key_algorithm="ec-p256",
        secret=ref(name),
        renew_before=timedelta(days=30),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def context(*items: DesiredCertificate) -> DesiredContext:
    return DesiredContext(
        owner=OWNER,
        context=CONTEXT,
        environment="test",
        base_url="https://api-test.ksef.mf.gov.pl/v2",
        auth=AuthSpec("certificate", SecretRef("secret", "ksef-admin/5265877635")),
        tokens=(),
        certificates=DesiredCertificates(tuple(items), "secret", TEMPLATE),
        token_policy=False,
    )


POLICY = Policy(OWNER, "test", "https://api-test.ksef.mf.gov.pl/v2", "secret", "x/{token}", ())


def cert(
    serial: str,
    name: str = "login",
    *,
    status: str = "Active",
    issued: datetime = NOW - YEAR,
    owner: str = OWNER,
    marked: bool = True,
    context_value: str = CONTEXT.value,
    type: str = "Authentication",
) -> ObservedCertificate:
    marker = CertificateMarker(name, owner, context_value, "abcdefghij") if marked else None
    return ObservedCertificate(
        serial_number=serial,
        name=marker.render() if marker else name,
        type=type,
        status=status,
        valid_from=issued,
        valid_to=issued + 2 * YEAR,
        requested=issued,
        marker=marker,
    )


def stored(
    name: str, serial: str, *, created: datetime = NOW - YEAR, **fields: object
) -> CertificateSecret:
    base = CertificateSecret(
        ref(name), True, 3, serial, "Authentication", "ec-p256", created, OWNER
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def plan(
    items: tuple[DesiredCertificate, ...],
    certificates: tuple[ObservedCertificate, ...],
    secrets: dict[str, CertificateSecret],
    now: datetime = NOW,
) -> tuple[list[CertificateChange], list[str]]:
    changes, notes = plan_context(
        OWNER, context(*items), ObservedCertificates(certificates, secrets), now
    )
    return changes, [n.text for n in notes]


def test_nothing_held_creates() -> None:
    (change,), _ = plan((declared(),), (), {})
    assert (change.action, change.reason, change.secret) == (Action.CREATE, "", ref("login"))


def test_held_and_fresh_is_a_no_op() -> None:
    changes, notes = plan((declared(),), (cert("A"),), {"login": stored("login", "A")})
    assert changes == [] and notes == []


def test_a_crash_before_the_vault_write_leaves_an_orphan_that_is_revoked() -> None:
    changes, _ = plan((declared(),), (cert("A"),), {})
    assert [(c.action, c.reason, c.serial_number) for c in changes] == [
        (Action.CREATE, "secret missing", None),
        (Action.REVOKE, "orphan: its private key is not in Vault", "A"),
    ]
    # Beside a held certificate, a newer unstored one is an orphan too.
    newer = cert("B", issued=NOW - timedelta(days=1))
    changes, _ = plan((declared(),), (cert("A"), newer), {"login": stored("login", "A")})
    assert [(c.action, c.serial_number, c.revocation_reason) for c in changes] == [
        (Action.REVOKE, "B", "Unspecified")
    ]


def test_renewal_is_due_before_expiry_and_keeps_the_old_one_for_the_overlap() -> None:
    item = declared(overlap=timedelta(days=2))
    old = cert("A", issued=NOW - 2 * YEAR + timedelta(days=29))
    (change,), _ = plan((item,), (old,), {"login": stored("login", "A")})
    assert change.action is Action.REPLACE and change.reason.startswith("renewal due")
    assert change.serial_number == "A" and change.keep_until == NOW + timedelta(days=2)
    # The next run: the successor is held, the old one kept until createdAt + overlap ...
    new = cert("B", issued=NOW)
    secrets = {"login": stored("login", "B", created=NOW)}
    changes, notes = plan((item,), (old, new), secrets, NOW + timedelta(days=1))
    assert changes == [] and "keeping A until" in notes[0]
    # ... then revoked as Superseded.
    (change,), _ = plan((item,), (old, new), secrets, NOW + timedelta(days=2))
    assert (change.action, change.serial_number, change.revocation_reason) == (
        Action.REVOKE,
        "A",
        "Superseded",
    )


def test_renewal_never_comes_before_half_the_validity() -> None:
    item = declared(renew_before=timedelta(days=3 * 365))
    young = cert("A", issued=NOW - timedelta(days=10))
    assert renewal_due(young, item) == young.valid_from + YEAR
    changes, _ = plan((item,), (young,), {"login": stored("login", "A")})
    assert changes == []


def test_expired_or_revoked_held_certificate_is_replaced_without_revoking_it() -> None:
    for status in ("Expired", "Revoked"):
        (change,), _ = plan(
            (declared(),), (cert("A", status=status),), {"login": stored("login", "A")}
        )
        assert (change.action, change.reason, change.serial_number) == (
            Action.REPLACE,
            status.lower(),
            None,
        )


def test_type_or_key_algorithm_changes_replace() -> None:
    (change,), _ = plan((declared(type="Offline"),), (cert("A"),), {"login": stored("login", "A")})
    assert change.reason == "type"
    (change,), _ = plan(
        (declared(key_algorithm="rsa-2048"),), (cert("A"),), {"login": stored("login", "A")}
    )
    assert change.reason == "key algorithm"


def test_undeclared_names_are_revoked_with_their_secret() -> None:
    changes, _ = plan((), (cert("A", "old"),), {"old": stored("old", "A")})
    assert [(c.action, c.serial_number, c.delete_secret, c.secret) for c in changes] == [
        (Action.REVOKE, "A", True, ref("old"))
    ]


def test_foreign_certificates_are_notes_only() -> None:
    certificates = (
        cert("H", "by hand", marked=False),
        cert("O", owner="other"),
        cert("C", context_value="7762811692"),  # ours, for another context of the same subject
    )
    changes, notes = plan((), certificates, {})
    assert changes == []
    assert len(notes) == 2 and "not made by ksefctl" in notes[0] and "owner other" in notes[1]


def test_a_secret_another_owner_wrote_is_never_overwritten() -> None:
    changes, notes = plan((declared(),), (), {"login": stored("login", "X", owner="other")})
    assert changes == [] and "not written by ksefctl for owner acme" in notes[0]


# -- properties --------------------------------------------------------------------

names = st.sampled_from(["login", "offline", "old"])
serials = st.sampled_from([f"{i:016X}" for i in range(6)])
statuses = st.sampled_from(["Active", "Active", "Blocked", "Revoked", "Expired"])
moments = st.integers(min_value=-800, max_value=10).map(lambda d: NOW + timedelta(days=d))


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[tuple[DesiredCertificate, ...], ObservedCertificates, datetime]:
    chosen = draw(st.sets(names, max_size=3))
    items = tuple(
        declared(
            name,
            type=draw(st.sampled_from(["Authentication", "Offline"])),
            overlap=draw(st.sampled_from([timedelta(0), timedelta(days=2)])),
        )
        for name in sorted(chosen)
    )
    certificates = tuple(
        {
            serial: cert(
                serial,
                draw(names),
                status=draw(statuses),
                issued=draw(moments),
                owner=draw(st.sampled_from([OWNER, OWNER, "other"])),
                marked=draw(st.booleans()),
                type=draw(st.sampled_from(["Authentication", "Offline"])),
            )
            for serial in draw(st.lists(serials, max_size=5))
        }.values()
    )
    secrets = {
        name: stored(
            name,
            draw(serials),
            exists=draw(st.booleans()),
            owner=draw(st.sampled_from([OWNER, OWNER, "other", None])),
            created=draw(moments),
        )
        for name in draw(st.sets(names))
    }
    return items, ObservedCertificates(certificates, secrets), draw(moments) + 2 * YEAR


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_every_planned_change_passes_admission_and_planning_is_deterministic(
    world: tuple[tuple[DesiredCertificate, ...], ObservedCertificates, datetime],
) -> None:
    items, observed, now = world
    desired = context(*items)
    changes, _ = plan_context(OWNER, desired, observed, now)
    again = plan_context(
        OWNER, desired, ObservedCertificates(observed.certificates[::-1], observed.secrets), now
    )
    assert again[0] == changes
    for change in changes:
        assert refusal(change, POLICY, desired, observed) is None, change
    by_serial = {c.serial_number: c for c in observed.certificates}
    # The certificate each declared name's secret holds (under that same name).
    held = {
        s.serial_number
        for name, s in observed.secrets.items()
        if s.exists
        and desired.certificates is not None
        and desired.certificates.named(name)
        and s.serial_number in by_serial
        and (marker := by_serial[s.serial_number].marker) is not None
        and marker.name == name
    }
    revoked = [c.serial_number for c in changes if c.action is Action.REVOKE and c.serial_number]
    assert len(revoked) == len(set(revoked))
    for serial in revoked:
        certificate = by_serial[serial]
        # Only Active certificates of this owner and context, never the one a declared name holds.
        assert certificate.status == "Active" and certificate.marker is not None
        assert certificate.marker.owner == OWNER and certificate.marker.context == CONTEXT.value
        assert serial not in held
    # At most one enrolment per declared name.
    enrolled = [c.name for c in changes if c.action in (Action.CREATE, Action.REPLACE)]
    assert len(enrolled) == len(set(enrolled)) and set(enrolled) <= {i.name for i in items}


@settings(max_examples=200, deadline=None)
@given(worlds(), st.data())
def test_admission_refuses_a_change_that_is_edited(
    world: tuple[tuple[DesiredCertificate, ...], ObservedCertificates, datetime],
    data: st.DataObject,
) -> None:
    items, observed, now = world
    desired = context(*items)
    changes, _ = plan_context(OWNER, desired, observed, now)
    if not changes:
        return
    change = data.draw(st.sampled_from(changes))
    hostile = data.draw(
        st.sampled_from(
            [
                replace(change, owner="other"),
                replace(change, context=ContextId("Nip", "7762811692")),
                replace(change, secret=SecretRef("secret", "ksef-admin/5265877635")),
                replace(change, name="nope"),
            ]
        )
    )
    assert refusal(hostile, POLICY, desired, observed) is not None
