"""Wiring: builds the store, the plans and the channel adapters from the settings, in one place.

Tests and drills swap adapters by passing their own `channels`; nothing else needs to know.
"""

import logging
import time
from dataclasses import dataclass, field

from pingan.handlers.channels.base import ChannelAdapter
from pingan.handlers.channels.console import ConsoleChannel, SandboxChannel
from pingan.handlers.channels.email import email_channel_from_env
from pingan.handlers.channels.twilio_sms import twilio_channel_from_settings
from pingan.handlers.channels.twilio_voice import twilio_voice_from_settings
from pingan.handlers.channels.webhook import WebhookChannel
from pingan.handlers.incidents.areas import DistrictCheck
from pingan.handlers.incidents.placement import Placer
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.areas import DistrictFileError, district_from_geojson
from pingan.settings import Settings
from pingan.store.repository import Store

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    plans: PlanSet
    channels: dict[str, ChannelAdapter] = field(default_factory=dict)
    areas: DistrictCheck | None = None  # the district check; None when it is off (PINGAN_DISTRICT_AREA_CHECK=false)
    placer: Placer | None = None  # the area hierarchy triage places reports in; None without a district file
    plans_loaded_ns: int = 0  # time.time_ns() just before the plans were read: the hot reload's starting point

    def reload_plans(self, plans: PlanSet) -> None:
        """A hot reload's new plan set (streams/plan_reload.py), and the placement rebuilt with it: the directory's
        registered areas may have changed, and the district file is read again (if it cannot be, the old index
        stays)."""
        self.plans = plans
        self.placer = load_placer(self.settings, plans) or self.placer

    def close(self) -> None:
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)  # a pooled HTTP client (webhook) lets its connections go
            if callable(closer):
                closer()
        self.store.close()


def build_channels(settings: Settings) -> dict[str, ChannelAdapter]:
    channels: dict[str, ChannelAdapter] = {
        "console": ConsoleChannel(settings.console_sink_path),
        # Exercise and test traffic is recorded here instead of being sent (see streams/stages.channel_for).
        "sandbox": SandboxChannel(settings.data_dir / "sandbox.log"),
    }
    optional: dict[str, ChannelAdapter | None] = {
        "twilio_sms": twilio_channel_from_settings(settings),
        "twilio_voice": twilio_voice_from_settings(settings),
        # Plans' webhooks sign with PINGAN_WEBHOOK_SECRET; the release webhook's receivers each with their own.
        "webhook": WebhookChannel(settings.webhook_secret, pool_size=settings.notify_limit("webhook"),
                                  url_secrets=settings.release_webhook_targets)
        if settings.webhook_secret or settings.release_webhooks else None,
        "email": email_channel_from_env(settings),
    }
    for name, channel in optional.items():
        if channel is not None:
            channels[name] = channel
        else:
            log.info("%s is not configured: its notifications are logged as failed", name)
    return channels


def load_placer(settings: Settings, plans: PlanSet) -> Placer | None:
    """The district's hierarchy and the directory's registered areas, indexed once for triage's placement. Built
    whether or not the CAP area check is on; a district file that cannot be read leaves reports unplaced (and the
    log says so) rather than stop intake."""
    path = settings.district_areas
    try:
        district = district_from_geojson(path.read_text(encoding="utf-8"), str(path))
    except (OSError, DistrictFileError) as exc:
        log.warning("reports are not placed in areas: %s", exc)
        return None
    return Placer(district, plans.directory.people.values())


def load_district(settings: Settings) -> DistrictCheck | None:
    """The district's areas for the area check, or None when the check is off. A file that cannot be used stops the
    start with `file:line: field: what is wrong`, rather than let every alert pass unchecked."""
    if not settings.district_area_check:
        log.info("district area check is off: every alert is treated as the district's")
        return None
    path = settings.district_areas
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DistrictFileError(str(path), f"cannot read the district areas file: {exc.strerror or exc}") from None
    district = district_from_geojson(text, str(path))
    log.info("district %s: %d areas from %s", district.name, len(district.areas), path)
    return DistrictCheck(district)


def bootstrap(settings: Settings | None = None, *, with_plans: bool = True,
              channels: dict[str, ChannelAdapter] | None = None) -> Services:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.resolved_database_url)
    loaded_ns = time.time_ns()
    plans = load_plans(settings.plans_dir) if with_plans else PlanSet.empty()
    areas = load_district(settings) if with_plans else None  # what the response stage decides with, like the plans
    placer = load_placer(settings, plans) if with_plans else None
    return Services(settings, store, plans, channels if channels is not None else build_channels(settings), areas,
                    plans_loaded_ns=loaded_ns, placer=placer)
