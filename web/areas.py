"""The district's areas over HTTP (issue 18, part 5): GET /v1/areas (the hierarchy: district → town → communities →
grids, with each grid's officers) and GET /v1/areas/{code} (one area: its path, children, open incidents, report
and incident counts of the last 24 h and 7 days by category, trend series and warnings; ?exercise=true counts
exercise incidents and reports in). Thin: the store reads (store/area_reads.py), the file is plans/areas/'s
(PINGAN_DISTRICT_AREAS).

A person with incidents.read; a department liaison sees only the incidents their department is involved in (as
GET /v1/incidents), the reports behind those, and no district-wide trend series.
"""

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from pingan.handlers.access.permissions import Permission, scoped
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.schemas.area_view import AreaDetail, AreaList, AreaNode, district_nodes
from pingan.schemas.areas import DistrictFileError
from pingan.schemas.common import utcnow
from pingan.settings import Settings
from pingan.store.access import incidents_involving
from pingan.store.area_reads import area_detail
from pingan.store.repository import Store
from pingan.web.auth import Principal, require, shown


def district_or_503(settings: Settings) -> tuple[str, list[AreaNode]]:
    try:
        return district_nodes(settings.district_areas)
    except (OSError, DistrictFileError) as exc:
        raise HTTPException(503, f"the district areas file cannot be read: {exc}") from None


def areas_router(settings: Settings, store: Store) -> APIRouter:
    router = APIRouter()
    reader = require(Permission.incidents_read)

    @router.get("/v1/areas", response_model=AreaList)
    def areas_list(_: Principal = Depends(reader)) -> JSONResponse:
        name, nodes = district_or_503(settings)
        return JSONResponse(AreaList(district=name, items=nodes).model_dump(mode="json"))

    @router.get("/v1/areas/{code}", response_model=AreaDetail, responses={404: {"description": "No such area"}})
    def area_one(code: str, exercise: bool = False, person: Principal = Depends(reader)) -> JSONResponse:
        _, nodes = district_or_503(settings)
        by_code = {n.code: n for n in nodes}
        if code not in by_code:
            raise HTTPException(404, f"area {code!r} not found in the district file")
        rules, _problems = read_trend_rules(settings.plans_dir)
        only = incidents_involving(store.engine, person.departments) if scoped(person.roles) else None
        detail = area_detail(store, by_code, code, utcnow(), rules.rules if rules else [], exercise=exercise,
                             only=only, scale=settings.escalation_time_scale)
        return JSONResponse(shown(person, detail.model_dump(mode="json")))

    return router
