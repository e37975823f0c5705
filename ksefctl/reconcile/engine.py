"""One run of ksefctl against KSeF and Vault: log in, observe, plan, execute.

The engine owns the connections of a run: one KSeF client per environment
(shared connection pool and public-key cache), one Vault store, and one KSeF
session per context, kept open from observation to execution so that a
no-op ``plan`` costs a single login per context and ``apply`` does not log in
twice.  Contexts run concurrently, bounded by ``parallelism``; one context
failing never stops the others — its failure is reported and the run exits 1.

A no-op run is observation only: login (challenge, signature, status, redeem),
one token list, the end of the session.  The context's rate limits are asked
for only before its first write, where pacing matters.

Sessions are cached in Vault (``ksefctl.vault.sessions``) unless
``RunSettings.session_cache`` says "off": a run resumes a context's session
with one refresh instead of logging in (a no-op ``plan`` is then a refresh
and one token list), leaves it open for the next run, and writes the refresh
token of every fresh login back.  A cached session that KSeF refuses (ended,
expired, its KSeF token revoked) falls back to a full login; one that no
longer fits (other credentials or KSeF, near its end) is ended by the run
that replaces it.  ``"end"`` (break-glass ``revoke``) logs in afresh and
ends and forgets every cached session of the contexts it touched.  Without
the cache every session is ended when the run closes.

With :class:`PruneScope` the engine also finds, through the owner's secrets in
Vault, contexts that have left the manifest, logs into them with the owner's
``spec.auth`` and observes them with nothing declared; the planner's prune rule
then revokes what this owner still has there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

from ksefctl.errors import KsefctlError
from ksefctl.ksef import ClientSettings, KsefClient, KsefError, Session, TransportError
from ksefctl.ksef.xades import SigningIdentity, load_identity, load_pkcs12
from ksefctl.manifest.identifiers import internal_id_problem, nip_problem
from ksefctl.manifest.model import AuthSpec, ContextId, Desired, DesiredContext, Policy, SecretRef
from ksefctl.reconcile import planner
from ksefctl.reconcile.admission import Scope
from ksefctl.reconcile.executor import ContextExecutor, ExecutorSettings, Outcome, unexpected
from ksefctl.reconcile.model import (
    Change,
    Note,
    NoteKind,
    Observed,
    ObservedContext,
    Plan,
    PlanOptions,
)
from ksefctl.reconcile.observe import observe_context
from ksefctl.secret import Secret
from ksefctl.vault import VaultStore
from ksefctl.vault.sessions import (
    CachedSession,
    CacheEntry,
    SessionCache,
    credentials_fingerprint,
)

log = logging.getLogger("ksefctl.engine")

Key = tuple[str, ContextId]  # (owner, context)
# "use": resume and keep sessions; "off": neither read nor write the cache;
# "end": log in afresh, then end and forget the cached sessions (break-glass).
SessionCacheMode = Literal["use", "off", "end"]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Failure:
    owner: str
    context: ContextId
    stage: str  # "login", "observe", "apply"
    message: str

    def __str__(self) -> str:
        return f"{self.context} ({self.owner}): {self.stage} failed: {self.message}"


@dataclass(frozen=True)
class PruneScope:
    """What ``--prune`` may clean: contexts of these owners that no manifest declares.

    ``declared`` holds every context of the manifests as loaded, before
    ``--nip``/``--shard`` narrowed the run, so that a narrowed run never takes
    an unselected context for a vanished one; ``selected`` applies the same
    selectors to vanished contexts, so sharded runners prune each exactly once.
    """

    declared: frozenset[Key]
    selected: Callable[[ContextId], bool] = lambda context: True


@dataclass
class RunSettings:
    parallelism: int = 64
    activation_timeout_s: float = 300.0
    ca_bundle: str | None = None
    clock: Callable[[], datetime] = utc_now
    on_context_done: Callable[[Key, bool], None] | None = None
    # httpx event hooks for every KSeF request (tests check them against the contract).
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None
    session_cache: SessionCacheMode = "use"
    # A cached session must outlive the run that resumes it; one nearer its end
    # is replaced by a full login (real KSeF refresh tokens live up to 7 days).
    session_min_life_s: float = 3600.0
    # Raises (LockLost) once this run no longer holds the lock of the owner named:
    # the executor calls it before every write.
    ensure_lock: Callable[[str], None] | None = None


@dataclass
class ObservedRun:
    """What one observation pass found, per context, and where it failed."""

    desired: Desired  # only the contexts observed successfully
    observed: Observed
    failures: list[Failure] = field(default_factory=list)


@dataclass
class ApplyReport:
    outcomes: dict[Key, list[Outcome]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and all(o.ok for os in self.outcomes.values() for o in os)


class Engine:
    def __init__(
        self,
        desired: Desired,
        store: VaultStore,
        settings: RunSettings,
        prune: PruneScope | None = None,
    ) -> None:
        self.desired = desired
        self.store = store
        self.settings = settings
        self.prune = prune
        self._clients: dict[str, KsefClient] = {}
        self._sessions: dict[Key, Session] = {}
        self._identities: dict[SecretRef, asyncio.Task[SigningIdentity | Secret]] = {}
        self._identity_uses: dict[SecretRef, int] = {}  # logins still to come, per credential
        self._semaphore = asyncio.Semaphore(max(1, settings.parallelism))
        self._contexts: dict[Key, tuple[Policy, DesiredContext]] = {
            (p.owner, c.context): (p, c) for p in desired.policies for c in p.contexts
        }
        self._observed: dict[Key, ObservedContext] = {}
        self._cache = SessionCache(store) if settings.session_cache != "off" else None
        self._cache_entries: dict[Key, tuple[SecretRef, CacheEntry]] = {}
        self._kept: set[Key] = set()  # sessions left open for the next run
        self._pruned_names: dict[Key, set[str]] = {}  # token names of vanished contexts' secrets

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections ------------------------------------------------------------
    def _client(self, base_url: str) -> KsefClient:
        client = self._clients.get(base_url)
        if client is None:
            client = KsefClient(
                base_url,
                ClientSettings(
                    ca_bundle=self.settings.ca_bundle,
                    event_hooks=self.settings.event_hooks or {},
                    # Learnt before a context's first write (apply), not on every login.
                    learn_rate_limits=False,
                ),
            )
            self._clients[base_url] = client
        return client

    async def _credentials(self, auth: AuthSpec) -> SigningIdentity | Secret:
        # One certificate often serves many contexts (an accounting office):
        # read and parse it once per run.
        task = self._identities.get(auth.secret)
        if task is None:
            task = asyncio.ensure_future(self._load_credentials(auth))
            self._identities[auth.secret] = task
        try:
            return await task
        finally:
            # A parsed certificate and key cost ~6 KB of OpenSSL memory each; with
            # one per company, keep them only until their last context logged in.
            left = self._identity_uses.get(auth.secret, 1) - 1
            self._identity_uses[auth.secret] = left
            if left <= 0:
                self._identities.pop(auth.secret, None)

    async def _load_credentials(self, auth: AuthSpec) -> SigningIdentity | Secret:
        if auth.method == "ksefToken":
            return (await self.store.read_credentials(auth.secret, required=["token"]))["token"]
        values = await self.store.read_credentials(auth.secret)
        password = values["password"].reveal() if "password" in values else None
        if "pkcs12" in values:
            try:
                bundle = base64.b64decode(values["pkcs12"].reveal(), validate=True)
            except binascii.Error:
                raise KsefctlError(f"Vault secret {auth.secret}: 'pkcs12' is not base64") from None
            return load_pkcs12(bundle, password)
        if "certificate" not in values or "privateKey" not in values:
            raise KsefctlError(
                f"Vault secret {auth.secret} needs 'certificate' and 'privateKey' (PEM) or 'pkcs12'"
            )
        return load_identity(
            values["certificate"].reveal(), values["privateKey"].reveal(), password
        )

    async def _full_login(
        self, context: DesiredContext, credentials: SigningIdentity | Secret
    ) -> Session:
        client = self._client(context.base_url)
        if isinstance(credentials, Secret):
            return await client.login_with_token(
                context.context.type, context.context.value, credentials
            )
        return await client.login_with_certificate(
            context.context.type,
            context.context.value,
            credentials,
            context.auth.subject_identifier_type,
        )

    async def _login(self, policy: Policy, context: DesiredContext) -> Session:
        cache = self._cache
        if cache is None:
            return await self._full_login(context, await self._credentials(context.auth))
        key = (policy.owner, context.context)
        ref = cache.ref(policy.vault_mount, policy.owner, policy.environment, context.context)
        credentials, entry = await asyncio.gather(self._credentials(context.auth), cache.read(ref))
        self._cache_entries[key] = (ref, entry)
        client = self._client(context.base_url)
        fingerprint = _fingerprint(credentials, context.auth)
        cached = entry.session
        resume = self.settings.session_cache == "use"
        if resume and cached is not None and self._resumable(cached, client.base_url, fingerprint):
            try:
                session = await client.resume_session(
                    context.context.type,
                    context.context.value,
                    cached.reference_number,
                    cached.refresh_token,
                    cached.refresh_valid_until,
                )
            except KsefError as error:
                log.info("cached KSeF session of %s not resumed: %s", context.context, error)
                if not isinstance(error, TransportError):
                    cached = None  # KSeF refused it: that session is over
            else:
                self._kept.add(key)
                return session
        session = await self._full_login(context, credentials)
        if self.settings.session_cache != "use":
            return session
        grant = session.refresh_grant
        record = CachedSession(
            reference_number=session.reference_number,
            refresh_token=grant.token,
            refresh_valid_until=grant.valid_until,
            base_url=client.base_url,
            credentials=fingerprint,
        )
        try:
            if await cache.write(ref, policy.owner, record, cas=entry.version):
                self._kept.add(key)
        except KsefctlError as error:
            log.warning("could not cache the KSeF session of %s: %s", context.context, error)
        if cached is not None and cached.base_url == client.base_url:
            # Still alive but unfit (other credentials, near its end): nobody will resume it.
            await _end_quietly(session, cached.reference_number)
        return session

    def _resumable(self, cached: CachedSession, base_url: str, fingerprint: str) -> bool:
        left = (cached.refresh_valid_until - datetime.now(UTC)).total_seconds()
        return (
            cached.base_url == base_url
            and cached.credentials == fingerprint
            and left > self.settings.session_min_life_s
        )

    async def _end_cached(self, key: Key) -> None:
        """Break-glass: end the context's cached session on KSeF and remove it from Vault."""
        assert self._cache is not None
        ref, entry = self._cache_entries[key]
        cached = entry.session
        if cached is not None:
            session = self._sessions.get(key)
            if session is not None:
                if cached.reference_number != session.reference_number:
                    await _end_quietly(session, cached.reference_number)
            else:
                # Our own login failed; the cached refresh token can still end its session.
                try:
                    resumed = await self._client(cached.base_url).resume_session(
                        key[1].type,
                        key[1].value,
                        cached.reference_number,
                        cached.refresh_token,
                        cached.refresh_valid_until,
                    )
                    await resumed.close()
                except KsefError as error:
                    log.info("cached KSeF session of %s not resumed to end it: %s", key[1], error)
        if entry.version:
            try:
                await self._cache.forget(ref)
            except KsefctlError as error:
                log.warning("could not remove the cached KSeF session %s: %s", ref, error)

    async def close(self) -> None:
        # Bounded like the work itself: ten thousand session ends launched at once
        # held ten thousand in-flight requests — most of a large plan's peak memory.
        workers = max(1, self.settings.parallelism)
        if self.settings.session_cache == "end":
            await _drain([partial(self._end_cached, key) for key in self._cache_entries], workers)
        sessions = [s for k, s in self._sessions.items() if k not in self._kept]
        self._sessions = {}
        await _drain([s.close for s in sessions], workers)
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    def session(self, key: Key) -> Session:
        return self._sessions[key]

    def observed_context(self, key: Key) -> ObservedContext:
        return self._observed[key]

    # -- per-context fan-out ------------------------------------------------------
    async def _each(
        self,
        keys: Iterable[Key],
        work: Callable[[Key], Awaitable[T]],
        stage: str,
        failures: list[Failure],
    ) -> dict[Key, T]:
        results: dict[Key, T] = {}

        async def one(key: Key) -> None:
            async with self._semaphore:
                try:
                    results[key] = await work(key)
                    ok = True
                except KsefctlError as error:
                    where = error.stage if isinstance(error, _Staged) else stage
                    failures.append(Failure(key[0], key[1], where, str(error)))
                    ok = False
                except Exception as error:  # a bug: this context fails, the others go on
                    log.debug("%s in %s of %s", stage, key[1], key[0], exc_info=True)
                    failures.append(Failure(key[0], key[1], stage, unexpected(error)))
                    ok = False
            if self.settings.on_context_done:
                self.settings.on_context_done(key, ok)

        # A fixed set of workers pulling from one iterator: ten thousand contexts
        # cost ten thousand small results, not ten thousand waiting tasks.
        pending = iter(list(keys))

        async def worker() -> None:
            for key in pending:
                await one(key)

        await asyncio.gather(*(worker() for _ in range(max(1, self.settings.parallelism))))
        return results

    # -- observe and plan ---------------------------------------------------------
    async def _vanished_contexts(
        self, scope: PruneScope
    ) -> dict[Key, tuple[Policy, DesiredContext]]:
        """Contexts that left the manifest but still hold this owner's secrets in Vault."""
        found: dict[Key, tuple[Policy, DesiredContext]] = {}
        listings = await asyncio.gather(
            *(
                self.store.list_owner_secrets(p.vault_mount, p.vault_path_template, p.owner)
                for p in self.desired.policies
            )
        )
        for policy, secrets in zip(self.desired.policies, listings, strict=True):
            for _, metadata in secrets:
                # A manifest of another environment prunes its own contexts, not these.
                if metadata.get("environment") != policy.environment:
                    continue
                context = parse_context(metadata.get("context", ""))
                key = (policy.owner, context) if context else None
                if context is None or key is None:
                    continue
                if metadata.get("token"):
                    # Observed too, so a secret whose token is gone gets deleted.
                    self._pruned_names.setdefault(key, set()).add(metadata["token"])
                if key in scope.declared or key in found:
                    continue
                if not scope.selected(context):
                    continue
                auth = policy.auth_for(context)
                if auth is None:
                    raise KsefctlError(
                        f"--prune found {context} of owner {policy.owner} in Vault, but the "
                        "manifest has no spec.auth to log into it with"
                    )
                found[key] = (
                    policy,
                    DesiredContext(
                        owner=policy.owner,
                        context=context,
                        environment=policy.environment,
                        base_url=policy.base_url,
                        auth=auth,
                        tokens=(),
                    ),
                )
        return found

    async def observe(self) -> ObservedRun:
        failures: list[Failure] = []
        if self.prune is not None:
            vanished = await self._vanished_contexts(self.prune)
            for key in vanished:
                log.info("pruning %s of owner %s: not in any manifest", key[1], key[0])
            self._contexts.update(vanished)

        self._identity_uses = {}
        for key, (_, context) in self._contexts.items():
            if key not in self._sessions:
                ref = context.auth.secret
                self._identity_uses[ref] = self._identity_uses.get(ref, 0) + 1

        async def observe_one(key: Key) -> ObservedContext:
            policy, context = self._contexts[key]
            session = self._sessions.get(key)
            if session is None:
                try:
                    session = await self._login(policy, context)
                except KsefctlError as error:
                    raise _Staged("login", error) from None
                self._sessions[key] = session
            names = {t.name for t in context.tokens} | self._pruned_names.get(key, set())
            return await observe_context(policy, context.context, names, session, self.store)

        observed = await self._each(self._contexts, observe_one, "observe", failures)
        self._observed = observed
        ok = set(observed)
        desired = Desired(
            policies=tuple(
                _with_contexts(p, [c for c in p.contexts if (p.owner, c.context) in ok])
                for p in self.desired.policies
            )
        )
        return ObservedRun(desired=desired, observed=Observed(contexts=observed), failures=failures)

    def plan(self, run: ObservedRun, options: PlanOptions, now: datetime | None = None) -> Plan:
        return planner.plan(run.desired, run.observed, now or self.settings.clock(), options)

    # -- apply ------------------------------------------------------------------
    async def apply(self, plan: Plan) -> ApplyReport:
        report = ApplyReport()
        changes: dict[Key, list[Change]] = {}
        notes: dict[Key, list[Note]] = {}
        for change in plan.changes:
            changes.setdefault((change.owner, change.context), []).append(change)
        for note in plan.notes:
            # Only a Pending token to wait for needs the executor; other notes are for reading.
            if note.kind is NoteKind.WAITING:
                notes.setdefault((note.owner, note.context), []).append(note)

        # Login material of every context in the run: no change may write or delete it.
        protected = frozenset(context.auth.secret for _, context in self._contexts.values())

        async def apply_one(key: Key) -> list[Outcome]:
            if key not in self._observed or key not in self._sessions:
                # A change for a context this run did not observe (a forged or stale plan).
                raise KsefctlError("not observed in this run; nothing done (run plan again)")
            policy, context = self._contexts[key]
            session = self._sessions[key]
            # Creations and revocations burst through the context's /tokens
            # limits: pace them by what KSeF says is in force (defaults if it
            # will not say).
            await session.learn_rate_limits()
            check = self.settings.ensure_lock
            executor = ContextExecutor(
                session,
                self.store,
                Scope(policy, context, self._observed[key], protected),
                ExecutorSettings(
                    environment=policy.environment,
                    activation_timeout_s=self.settings.activation_timeout_s,
                    clock=self.settings.clock,
                    ensure_lock=partial(check, policy.owner) if check else _held,
                ),
            )
            return await executor.run(changes.get(key, []), notes.get(key, []))

        keys = sorted(set(changes) | set(notes), key=lambda k: (k[0], k[1]))
        report.outcomes = await self._each(keys, apply_one, "apply", report.failures)
        return report


def _held() -> None:
    return None


class _Staged(KsefctlError):
    def __init__(self, stage: str, error: KsefctlError) -> None:
        super().__init__(str(error))
        self.stage = stage


def _fingerprint(credentials: SigningIdentity | Secret, auth: AuthSpec) -> str:
    # Who logs in decides what a session may do: a session opened with other
    # credentials (or identifying the signer otherwise) is not resumed.
    if isinstance(credentials, Secret):
        return credentials_fingerprint(f"ksefToken:{credentials.reveal()}")
    return credentials_fingerprint(
        f"certificate:{credentials.fingerprint}:{auth.subject_identifier_type}"
    )


async def _drain(calls: Sequence[Callable[[], Awaitable[object]]], workers: int) -> None:
    """Best-effort clean-up: run ``calls`` at most ``workers`` at a time, ignoring their errors."""
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            with contextlib.suppress(Exception):
                await call()

    await asyncio.gather(*(worker() for _ in range(workers)))


async def _end_quietly(session: Session, reference_number: str) -> None:
    try:
        await session.end_session(reference_number)
    except KsefError as error:
        log.info(
            "could not end KSeF session %s of %s: %s", reference_number, session.context, error
        )


def _with_contexts(policy: Policy, contexts: Sequence[DesiredContext]) -> Policy:
    return replace(policy, contexts=tuple(contexts))


def parse_context(text: str) -> ContextId | None:
    """``Nip:5265877635`` / ``InternalId:5265877635-12345`` as Vault records them; None if neither."""
    kind, _, value = text.partition(":")
    if kind == "Nip" and nip_problem(value) is None:
        return ContextId("Nip", value)
    if kind == "InternalId" and internal_id_problem(value) is None:
        return ContextId("InternalId", value)
    return None
