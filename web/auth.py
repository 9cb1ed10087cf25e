"""Who is asking: the authenticated person behind a request, and the permission checks every route makes.

CONTRACT (being implemented; the console and the API routes code against it):
- `principal(request)` -> Principal, a FastAPI dependency: from the session cookie (console) or a personal API token
  (`Authorization: Bearer pa_…`); 401 when neither is valid. Intake tokens never authenticate a person.
- `require(permission)` -> a dependency returning the Principal, 403 when the person's roles lack the permission
  (handlers.access.permissions), 401 without credentials; for SECOND_FACTOR permissions also 403 unless the session
  has passed the second factor recently.
- The actor of every command is `principal.person_id`; the log records `principal.method`.
"""

from dataclasses import dataclass

from fastapi import Request

from pingan.handlers.access.permissions import Permission, Role, allowed


@dataclass(frozen=True)
class Principal:
    person_id: str  # a person of plans/directory/people.yaml
    roles: frozenset[Role]
    method: str  # how they authenticated: session, token (and, outside HTTP: cli, sms, voice)
    departments: frozenset[str] = frozenset()  # a department liaison's departments
    lang: str = "zh"  # the console's language for this person: zh or en
    session_id: str | None = None
    second_factor: bool = False  # the session passed the second factor recently

    def can(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)


def principal(request: Request) -> Principal:
    raise NotImplementedError("web.auth.principal: identity is being built (issue 13)")


def require(permission: Permission):  # type: ignore[no-untyped-def]
    raise NotImplementedError("web.auth.require: identity is being built (issue 13)")
