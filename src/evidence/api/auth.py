"""Bearer authentication and role checks, as FastAPI dependencies (tokens in tokens.json).

Every refusal here is also an ``access.denied`` audit record (see :mod:`.denials`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from evidence.api.denials import denied
from evidence.api.state import api_state
from evidence.errors import Forbidden, Unauthenticated
from evidence.tokens import Principal, Role

_bearer = HTTPBearer(auto_error=False)

NO_TOKEN = "no bearer token"
UNKNOWN_TOKEN = "unknown bearer token"


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise denied(
            request,
            Unauthenticated("send 'Authorization: Bearer <token>' (tokens are in tokens.json)"),
            NO_TOKEN,
        )
    return authenticate(request, credentials.credentials)


def authenticate(request: Request, token: str) -> Principal:
    """The holder of ``token``; an unknown token is refused and audited (without the token)."""
    try:
        return api_state(request).tokens.authenticate(token)
    except Unauthenticated as exc:
        denied(request, exc, UNKNOWN_TOKEN)
        raise


def role(*allowed: Role) -> Callable[[Request, Principal], Principal]:
    def check(request: Request, who: Annotated[Principal, Depends(caller)]) -> Principal:
        if who.role not in allowed:
            needed = " or ".join(r.value for r in allowed)
            raise denied(
                request,
                Forbidden(f"a {who.role.value} token may not do this: it needs {needed}"),
                f"needs {needed}",
                who,
            )
        return who

    return check


DockCaller = Annotated[Principal, Depends(role(Role.DOCK))]
RecordsCaller = Annotated[Principal, Depends(role(Role.RECORDS))]
ReaderCaller = Annotated[Principal, Depends(role(Role.DOCK, Role.RECORDS))]
CustodianCaller = Annotated[Principal, Depends(role(Role.RECORDS, Role.SUPERVISOR))]
OverseerCaller = Annotated[
    Principal, Depends(role(Role.RECORDS, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN))
]
AdminCaller = Annotated[Principal, Depends(role(Role.ADMIN))]
# An officer passes here for playback of their own clips only: evidence.playback checks which.
PlayerCaller = Annotated[Principal, Depends(role(Role.RECORDS, Role.SUPERVISOR, Role.OFFICER))]
