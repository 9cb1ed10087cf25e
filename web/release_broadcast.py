"""A release's public SMS broadcast in figures (issue 17): GET /v1/releases/{id}/broadcast, for whoever may read the
incident. From the store (store/subscriptions.py): planned, sent, failed, stopped by a 退订 before sending,
throttled by the provider, still pending."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from pingan.handlers.access.permissions import Permission
from pingan.store import releases
from pingan.store.repository import Store
from pingan.store.subscriptions import SubscriptionStore
from pingan.web.auth import Principal, require, visible_incident


def release_broadcast_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["releases"])

    def figures(release_id: str, person: Principal) -> dict[str, Any]:
        release = releases.get(store, release_id)
        if release is None:
            raise HTTPException(404, f"release {release_id!r} not found")
        try:
            visible_incident(store, person, release.incident_id)
        except HTTPException:
            raise HTTPException(404, f"release {release_id!r} not found") from None
        out = SubscriptionStore(store).figures(release_id)
        return {**out.as_dict(), "planned_at": out.planned_at.isoformat() if out.planned_at else None}

    @router.get("/v1/releases/{release_id}/broadcast",
                summary="A release's SMS broadcast: planned, sent, failed, unsubscribed, throttled (incidents.read)")
    async def broadcast(release_id: str,
                        person: Principal = Depends(require(Permission.incidents_read))) -> dict[str, Any]:
        return await run_in_threadpool(figures, release_id, person)

    return router
