"""The release workflow's rules: edit, approve, reject, publish, withdraw. Pure: a release, who acts and what they hold
in; the changed release out, or ReleaseRefused saying why (core/releases.py logs every refusal).

Four eyes, always: the approver is neither the drafter nor the last editor, and holds one of the roles the plan's
template names (`approver_roles`, default commander) — an account role (handlers/access) or the command role the
incident's plan level gives them. An approval names the revision it saw; any edit after it sends the release back to
draft, so only an approved revision is ever published. A rejected release goes back with a reason; editing it makes
it a draft again. Publication is the last step: nothing edits or withdraws a published release (an update or an
all-clear follows it instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pingan.handlers.releases.drafting import ReleaseForbidden, ReleaseRefused, marked_texts, next_kind
from pingan.schemas.areas import AlertArea
from pingan.schemas.release import Release, ReleaseChannel, ReleaseKind, ReleaseState, ReleaseTexts

PUBLIC_INFORMATION = "public_information"
# Who works releases as a public information officer: that role, and an admin (who holds every permission). An
# admin approves only where the plan's approver_roles name admin: four eyes follow the plan, not the account table.
OFFICERS = (PUBLIC_INFORMATION, "admin")
EDITABLE = (ReleaseState.draft, ReleaseState.rejected, ReleaseState.approved)


@dataclass(frozen=True)
class Actor:
    """An authenticated person and every role they hold for this incident (account roles and command roles)."""

    person: str
    roles: frozenset[str]


def _holds(actor: Actor, roles: Sequence[str]) -> bool:
    return bool(actor.roles & set(roles))


def may_draft(release: Release, actor: Actor) -> None:
    """A public information officer drafts; so may an approver (whose draft another approver then approves)."""
    if not _holds(actor, [*OFFICERS, *release.approver_roles]):
        raise ReleaseForbidden(f"draft: only a public information officer or a person holding "
                               f"{' or '.join(release.approver_roles)} drafts a release; {actor.person} holds "
                               f"{_roles(actor)}")


def may_edit(release: Release, actor: Actor) -> None:
    if actor.person != release.drafted_by and not _holds(actor, OFFICERS):
        raise ReleaseForbidden(f"edit: only the drafter ({release.drafted_by}) or a public information officer may "
                               f"edit release {release.id}; {actor.person} holds {_roles(actor)}")


def edit(release: Release, actor: Actor, at: datetime, *, texts: ReleaseTexts | None = None,
         areas: list[AlertArea] | None = None, channels: list[ReleaseChannel] | None = None) -> Release:
    """A new revision by the drafter or a public information officer; an approved or rejected release becomes a
    draft again (its approval was of the earlier text)."""
    if release.state not in EDITABLE:
        raise ReleaseRefused(f"edit: release {release.id} is {release.state.value} and can no longer be edited; "
                             "draft an update instead" if release.state is ReleaseState.published else
                             f"edit: release {release.id} is {release.state.value} and can no longer be edited")
    may_edit(release, actor)
    if texts is None and areas is None and channels is None:
        raise ReleaseRefused("edit: nothing to change; give texts, areas or channels")
    if channels is not None and not channels:
        raise ReleaseRefused("channels: a release needs at least one channel")
    return release.model_copy(update={
        "texts": marked_texts(texts, release.status) if texts is not None else release.texts,
        "areas": areas if areas is not None else release.areas,
        "channels": channels if channels is not None else release.channels,
        "revision": release.revision + 1, "state": ReleaseState.draft, "edited_by": actor.person, "edited_at": at,
        "approved_by": None, "approved_at": None, "approved_revision": None,
        "rejected_by": None, "rejected_reason": None,
    })


def _four_eyes(release: Release, actor: Actor, doing: str) -> None:
    if actor.person == release.drafted_by:
        raise ReleaseForbidden(f"four eyes: {actor.person} drafted release {release.id} and cannot {doing} it; "
                               f"another person holding {' or '.join(release.approver_roles)} must")
    if release.edited_by and actor.person == release.edited_by:
        raise ReleaseForbidden(f"four eyes: {actor.person} last edited release {release.id} and cannot {doing} it; "
                               f"another person holding {' or '.join(release.approver_roles)} must")
    if not _holds(actor, release.approver_roles):
        raise ReleaseForbidden(f"{doing}: release {release.id} needs a person holding "
                               f"{' or '.join(release.approver_roles)}; {actor.person} holds {_roles(actor)}")


def _revision(release: Release, revision: int | None, doing: str) -> None:
    if revision is not None and revision != release.revision:
        raise ReleaseRefused(f"revision: {doing} names revision {revision} but release {release.id} is at revision "
                             f"{release.revision}; read it again first")


def approve(release: Release, actor: Actor, at: datetime, revision: int | None = None) -> Release:
    """Four eyes: another person with an approving role approves the revision they read."""
    if release.state is not ReleaseState.draft:
        raise ReleaseRefused(f"approve: release {release.id} is {release.state.value}; only a draft can be approved"
                             + ("; edit it first (it was rejected)" if release.state is ReleaseState.rejected else ""))
    _four_eyes(release, actor, "approve")
    _revision(release, revision, "the approval")
    return release.model_copy(update={"state": ReleaseState.approved, "approved_by": actor.person, "approved_at": at,
                                      "approved_revision": release.revision})


def reject(release: Release, actor: Actor, at: datetime, reason: str) -> Release:
    """Back to the drafter with a reason, by a person who could have approved it."""
    if release.state not in (ReleaseState.draft, ReleaseState.approved):
        raise ReleaseRefused(f"reject: release {release.id} is {release.state.value}; only a draft or an approved "
                             "release can be rejected")
    if not reason.strip():
        raise ReleaseRefused("reason: a rejection needs a reason for the drafter")
    _four_eyes(release, actor, "reject")
    return release.model_copy(update={"state": ReleaseState.rejected, "rejected_by": actor.person,
                                      "rejected_reason": reason.strip()[:2000], "approved_by": None,
                                      "approved_at": None, "approved_revision": None})


def publish(release: Release, actor: Actor, at: datetime, published: Sequence[Release], cap_identifier: str,
            revision: int | None = None) -> Release:
    """Only an approved release, only at its approved revision, by a public information officer or an approver.

    Kind and references are settled now, against what the incident has published by then: a draft made as the
    alert becomes an update if another release went out first."""
    if release.state is not ReleaseState.approved:
        raise ReleaseRefused(f"publish: release {release.id} is {release.state.value}; only an approved release is "
                             "published (four eyes: another person must approve it first)")
    if release.approved_revision != release.revision:
        raise ReleaseRefused(f"publish: release {release.id} is at revision {release.revision} but revision "
                             f"{release.approved_revision} was approved; it must be approved again")
    _revision(release, revision, "the publication")
    if actor.person != release.drafted_by and not _holds(actor, [*OFFICERS, *release.approver_roles]):
        raise ReleaseForbidden(f"publish: {actor.person} is neither the drafter nor a public information officer or "
                               f"approver ({' or '.join(release.approver_roles)}); holds {_roles(actor)}")
    kind, references = next_kind([r for r in published if r.id != release.id],
                                 release.kind is ReleaseKind.all_clear)
    return release.model_copy(update={"state": ReleaseState.published, "kind": kind, "references": references,
                                      "published_by": actor.person, "published_at": at,
                                      "cap_identifier": cap_identifier})


def withdraw(release: Release, actor: Actor) -> Release:
    """A release abandoned before publication; a published one is corrected by an update, never withdrawn."""
    if release.state not in EDITABLE:
        what = "correct it with an update or end it with an all-clear" if release.state is ReleaseState.published \
            else "it is already withdrawn"
        raise ReleaseRefused(f"withdraw: release {release.id} is {release.state.value}; {what}")
    if actor.person != release.drafted_by and not _holds(actor, [*OFFICERS, *release.approver_roles]):
        raise ReleaseForbidden(f"withdraw: only the drafter, a public information officer or an approver may withdraw "
                               f"release {release.id}; {actor.person} holds {_roles(actor)}")
    return release.model_copy(update={"state": ReleaseState.withdrawn})


def cap_identifier(prefix: str, release_id: str) -> str:
    """A stable CAP identifier: the sender's prefix and the release id, without spaces, commas, < or &."""
    clean = "".join(c for c in f"{prefix}-{release_id}" if c not in " ,<&\t\r\n")
    return clean.strip("-") or release_id


def _roles(actor: Actor) -> str:
    return ", ".join(sorted(actor.roles)) or "no role"
