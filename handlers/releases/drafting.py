"""Drafting a release (信息发布): a plan's release template filled with the incident's facts, in zh-CN and en. Pure.

The template's `text` is the description; its placeholders are a notify step's ({title} {level} {grade_name} {area}
…, handlers/incidents/notify.py), rendered the same way (an unknown name stays visible rather than failing). The
kind follows the incident's published record: its first release is an alert, later ones updates that reference
every earlier published release, and the template marked `kind: all_clear` ends it (CAP Cancel). An exercise or
test incident gives a release of its own status with every text marked 演练 / DRILL (测试 / TEST) in both languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pingan.handlers.incidents.notify import STATUS_PREFIX, placeholder_values, render, without_markers
from pingan.schemas.areas import AlertArea, Geocode
from pingan.schemas.common import LocalizedText
from pingan.schemas.incident import Incident
from pingan.schemas.plan import Level, Plan, ReleaseTemplate
from pingan.schemas.release import Release, ReleaseChannel, ReleaseKind, ReleaseState, ReleaseTexts
from pingan.schemas.taxonomy import IncidentStatus

# Headlines when the template has none: what kind of release, then the incident's own title and grade.
_HEADLINE = {
    ReleaseKind.alert: {"zh": "{title}（{grade_name}，{level}）", "en": "{title} ({grade_name}, {level})"},
    ReleaseKind.update: {"zh": "【更新】{title}（{grade_name}，{level}）",
                         "en": "Update: {title} ({grade_name}, {level})"},
    ReleaseKind.all_clear: {"zh": "【解除】{title}", "en": "All clear: {title}"},
}


# When the plan has no template for the grade and kind, a plain one, for the officer to edit before approval: an
# incident never goes without a public word, nor without its all-clear, because a plan left one out.
DEFAULT_TEMPLATES = {
    ReleaseKind.alert: ReleaseTemplate(
        id="pingan-default", text=LocalizedText(
            zh="{area}发生{title}，已启动{level}，相关部门正在处置。请关注官方发布的信息，听从现场工作人员指挥。",
            en="{title} in {area}: {level} is active and the services concerned are responding. Follow official "
               "information and the instructions of staff on site.")),
    ReleaseKind.all_clear: ReleaseTemplate(
        id="pingan-all-clear", kind=ReleaseKind.all_clear, text=LocalizedText(
            zh="{title}应急处置工作已基本结束，{level}现已终止。感谢市民的理解和配合。",
            en="The response to {title} is largely over and {level} has ended. Thank you for your patience.")),
}


class ReleaseRefused(Exception):
    """A release step that the rules refuse; the message says why, for the person who tried (and the log)."""


class ReleaseForbidden(ReleaseRefused):
    """Refused because of who asked: four eyes, or a role the step needs (HTTP 403; the others are 409)."""


def templates_for(plan: Plan, level: Level, kind: ReleaseKind) -> list[ReleaseTemplate]:
    """The plan's templates for this level's grade and this kind (all-clear templates only for an all-clear)."""
    ending = kind is ReleaseKind.all_clear
    return [t for t in plan.release if level.grade in t.grades and (t.kind is ReleaseKind.all_clear) == ending]


def pick_template(plan: Plan, level: Level, kind: ReleaseKind, template_id: str | None = None) -> ReleaseTemplate:
    """The template named (ReleaseRefused naming the choices if it does not fit), else the plan's first for this
    grade and kind, else the default one for the kind."""
    fitting = templates_for(plan, level, kind)
    if template_id is not None:
        named = next((t for t in plan.release if t.id == template_id), None)
        if named is None:
            known = ", ".join(t.id for t in plan.release) or "none"
            raise ReleaseRefused(f"template: plan {plan.id!r} has no release template {template_id!r} (it has {known})")
        if level.grade not in named.grades:
            raise ReleaseRefused(f"template: {template_id!r} is not for grade {level.grade.value} "
                                 f"(its grades: {', '.join(g.value for g in named.grades)})")
        return named
    if not fitting:
        return DEFAULT_TEMPLATES[ReleaseKind.all_clear if kind is ReleaseKind.all_clear else ReleaseKind.alert]
    return fitting[0]


def next_kind(published: Sequence[Release], all_clear: bool) -> tuple[ReleaseKind, list[str]]:
    """(kind, references) for a new release of an incident whose published releases are `published`."""
    ended = next((r for r in published if r.kind is ReleaseKind.all_clear), None)
    if ended is not None:
        raise ReleaseRefused(f"the incident's releases were ended by the all-clear {ended.id}; nothing follows it")
    references = [r.id for r in sorted(published, key=_published_order)]
    if all_clear:
        if not references:
            raise ReleaseRefused("all-clear: nothing has been published for this incident, so there is nothing to "
                                 "clear; draft an alert instead")
        return ReleaseKind.all_clear, references
    return (ReleaseKind.update if references else ReleaseKind.alert), references


def _published_order(release: Release) -> tuple[datetime, str]:
    assert release.published_at is not None
    return release.published_at, release.id


def release_areas(incident: Incident) -> list[AlertArea]:
    """The incident's alert areas, or one made from its location (name and area code) when it has none."""
    if incident.areas:
        return list(incident.areas)
    location = incident.location
    if not (location.area_name or location.area_code):
        return []
    geocodes = [Geocode(name="行政区划代码", value=location.area_code)] if location.area_code else []
    return [AlertArea(name=location.area_name or location.area_code, geocodes=geocodes)]


def mark(text: LocalizedText, status: IncidentStatus) -> LocalizedText:
    """The text with the status marker (【演练】 / [DRILL] …) up front in each language, once."""
    prefix = STATUS_PREFIX.get(status)
    if prefix is None:
        return text

    def marked(value: str, lang: str) -> str:
        return value if value.startswith(prefix[lang].strip()) else prefix[lang] + value

    return LocalizedText(zh=marked(text.zh, "zh"), en=marked(text.en, "en") if text.en else None)


def fill(template: LocalizedText, incident: Incident, plan: Plan, level: Level) -> LocalizedText:
    """The template rendered with the incident's facts in zh and (when the template has it) en."""
    values = {lang: placeholder_values(incident, plan, lang, level) for lang in ("zh", "en")}
    for by_lang in values.values():  # the marker goes up front once (mark), not again inside the text
        by_lang["title"] = without_markers(by_lang["title"])
    return LocalizedText(zh=render(template.zh, values["zh"]),
                         en=render(template.en, values["en"]) if template.en else None)


def texts_for(template: ReleaseTemplate, kind: ReleaseKind, incident: Incident, plan: Plan, level: Level
              ) -> ReleaseTexts:
    headline = template.headline or LocalizedText(**_HEADLINE[kind])
    texts = ReleaseTexts(
        headline=fill(headline, incident, plan, level),
        description=fill(template.text, incident, plan, level),
        instruction=fill(template.instruction, incident, plan, level) if template.instruction else None,
    )
    return marked_texts(texts, incident.status)


def marked_texts(texts: ReleaseTexts, status: IncidentStatus) -> ReleaseTexts:
    """Every text of an exercise or test release marked in both languages (also after a person's edit)."""
    if status is IncidentStatus.actual:
        return texts
    return ReleaseTexts(headline=mark(texts.headline, status), description=mark(texts.description, status),
                        instruction=mark(texts.instruction, status) if texts.instruction else None)


def draft_release(incident: Incident, plan: Plan, level: Level, published: Sequence[Release], *, release_id: str,
                  by: str, at: datetime, all_clear: bool = False, template_id: str | None = None,
                  channels: Sequence[ReleaseChannel] | None = None) -> Release:
    """A new draft of the incident's next release; ReleaseRefused when the plan or the record does not allow one."""
    if incident.state.value == "closed" and not all_clear:
        raise ReleaseRefused(f"incident {incident.id} is closed; only an all-clear may still be released")
    kind, references = next_kind(published, all_clear)
    template = pick_template(plan, level, kind, template_id)
    return Release(
        id=release_id, incident_id=incident.id, template_id=template.id, plan_id=plan.id, kind=kind,
        state=ReleaseState.draft, status=incident.status, category=incident.category, subtype=incident.subtype,
        grade=incident.grade, warning_colour=incident.warning_colour,
        texts=texts_for(template, kind, incident, plan, level), areas=release_areas(incident),
        channels=list(channels) if channels else list(template.channels),
        approver_roles=list(template.approver_roles), references=references, drafted_by=by, drafted_at=at,
    )
