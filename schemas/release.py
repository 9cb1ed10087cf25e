"""Public information releases (信息发布, issue 17): the one shape a release has from draft to publication.

A release is drafted from a plan's release template (schemas/plan.py ReleaseTemplate) filled with an incident's
facts, edited by the public information officer, approved by a second person holding the role the template names,
and published to the channels it lists. Each published release becomes one CAP 1.2 alert (schemas/adapters/cap_out.py):
the first of an incident is an Alert, a correction an Update that references the earlier ones, an all-clear a Cancel.

Exercise incidents give exercise releases: CAP status Exercise, texts marked 演练 / DRILL, sent to nobody but a
drill's live participants.
"""

from enum import StrEnum

from pydantic import Field

from pingan.schemas.areas import AlertArea
from pingan.schemas.common import LocalizedText, Model, UtcDatetime
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype, WarningColour

RELEASE_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class ReleaseKind(StrEnum):
    """What the release does to the public record; CAP msgType Alert, Update, Cancel."""

    alert = "alert"  # the incident's first release
    update = "update"  # a correction or new advice; references every earlier published release of the incident
    all_clear = "all_clear"  # the end; CAP Cancel


class ReleaseState(StrEnum):
    draft = "draft"
    approved = "approved"
    rejected = "rejected"  # back to the drafter with a reason; editing it makes it a draft again
    published = "published"
    withdrawn = "withdrawn"  # a draft abandoned before publication


class ReleaseChannel(StrEnum):
    cap = "cap"  # the public CAP feed /public/cap/feed.atom and /public/cap/{identifier}.xml, and the /public/ page
    sms_broadcast = "sms_broadcast"  # SMS to the subscribers of the release's areas
    webhook = "webhook"  # a signed webhook to media and other systems


class ReleaseTexts(Model):
    """What the public reads, in zh-CN and en (en optional; the zh text is used where it is missing)."""

    headline: LocalizedText
    description: LocalizedText
    instruction: LocalizedText | None = None


class Release(Model):
    id: str = Field(min_length=1, max_length=96, pattern=RELEASE_ID_PATTERN)
    incident_id: str = Field(min_length=1, max_length=64)
    template_id: str | None = Field(default=None, max_length=64, description="The plan's ReleaseTemplate id")
    plan_id: str | None = Field(default=None, max_length=64)
    kind: ReleaseKind = ReleaseKind.alert
    state: ReleaseState = ReleaseState.draft
    status: IncidentStatus = Field(
        default=IncidentStatus.actual, description="As the incident's: exercise releases reach only live participants")
    category: Category
    subtype: Subtype
    grade: Grade
    warning_colour: WarningColour | None = None
    texts: ReleaseTexts
    areas: list[AlertArea] = Field(default_factory=list, max_length=50)
    channels: list[ReleaseChannel] = Field(default_factory=lambda: [ReleaseChannel.cap])
    approver_roles: list[str] = Field(
        default_factory=lambda: ["commander"], description="Roles of whom may approve; never the drafter")
    references: list[str] = Field(
        default_factory=list, description="Ids of the incident's earlier published releases (Update, all-clear)")
    revision: int = Field(default=1, ge=1, description="Bumped by every edit; an approval names the revision it saw")
    drafted_by: str = Field(min_length=1, max_length=64, description="Person id")
    drafted_at: UtcDatetime
    edited_by: str | None = Field(default=None, max_length=64)
    edited_at: UtcDatetime | None = None
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: UtcDatetime | None = None
    approved_revision: int | None = Field(default=None, ge=1, description="The revision approved; only it publishes")
    rejected_by: str | None = Field(default=None, max_length=64)
    rejected_reason: str | None = Field(default=None, max_length=2000)
    published_by: str | None = Field(default=None, max_length=64)
    published_at: UtcDatetime | None = None
    cap_identifier: str | None = Field(
        default=None, max_length=200, description="Set at publication; stable, no spaces, commas, < or &")

    @property
    def is_exercise(self) -> bool:
        return self.status != IncidentStatus.actual
