"""What FastAPI cannot see in the routes, added to /openapi.json: the bodies the intake and sign-in routes read
themselves (CAP XML, the Alertmanager webhook, Twilio's forms, JSON or a form for /auth), and who may call each
operation (securitySchemes, and `security` on every operation). Without them a client generator, a reader and the
fuzz test (tests/e2e/test_openapi_fuzz.py) saw those routes as taking no body and no credentials.

The Alertmanager body is its pydantic model (schemas/adapters/alertmanager.py), the /auth bodies are theirs
(web/auth_routes.py); Twilio's forms are described by the models below, which document only: the adapters read the
form as a dict, since Twilio adds fields over time and signs all of them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pingan.schemas.adapters.alertmanager import AmWebhook
from pingan.web.auth_routes import LangIn, SecondFactorIn, SignInIn

REF = "#/components/schemas/{model}"
FORM = "application/x-www-form-urlencoded"

CAP_EXAMPLE = (
    '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>SZMB-2026-0801-01</identifier>'
    "<sender>warning@example.org</sender><sent>2026-08-01T08:00:00+08:00</sent><status>Actual</status>"
    "<msgType>Alert</msgType><scope>Public</scope><info><language>zh-CN</language><category>Met</category>"
    "<event>台风</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
    "<headline>台风橙色预警</headline><area><areaDesc>唐家湾</areaDesc>"
    "<polygon>22.30,113.50 22.30,113.60 22.40,113.60 22.40,113.50 22.30,113.50</polygon></area></info></alert>"
)


class _TwilioForm(BaseModel):
    model_config = ConfigDict(extra="allow")  # Twilio adds fields; all of them are signed

    AccountSid: str | None = Field(default=None, description="The Twilio account, AC…")
    From: str | None = Field(default=None, description="The caller or sender, usually E.164 (+8613800138000)")
    To: str | None = Field(default=None, description="Our number that was called or texted")


class TwilioSmsForm(_TwilioForm):
    """An inbound SMS (Twilio's Messaging webhook)."""

    MessageSid: str = Field(description="SM…; Twilio's retries of one message carry the same SID")
    From: str = Field(description="The sender, usually E.164; kept whole in the `twilio_from` label if over 32")
    Body: str = Field(description="The text; STOP, START and HELP are commands, not reports")
    NumMedia: str | None = Field(default=None, pattern=r"^\d+$", description="How many MediaUrlN follow")
    MediaUrl0: str | None = None
    MediaContentType0: str | None = None


class TwilioVoiceForm(_TwilioForm):
    """A call arriving (Twilio's Voice webhook): answered with the IVR menu."""

    CallSid: str = Field(description="CA…")
    CallStatus: str | None = None


class TwilioVoiceChoiceForm(TwilioVoiceForm):
    """The menu's <Gather> callback: 1–5 report at once, 0 records a message."""

    Digits: str | None = Field(default=None, description="The key the caller pressed")


class TwilioRecordingForm(TwilioVoiceForm):
    """The <Record> action callback: the caller's message as an unclassified report."""

    RecordingUrl: str = Field(description="Where Twilio keeps the recording")
    RecordingSid: str | None = None
    RecordingDuration: str | None = None


class TwilioStatusForm(_TwilioForm):
    """A delivery status callback of a message or call we sent."""

    MessageSid: str | None = None
    MessageStatus: str | None = None
    CallSid: str | None = None
    CallStatus: str | None = None
    ErrorCode: str | None = None


TWILIO_FORMS: dict[str, type[BaseModel]] = {
    "/v1/intake/twilio/sms": TwilioSmsForm,
    "/v1/intake/twilio/voice": TwilioVoiceForm,
    "/v1/intake/twilio/voice/choice": TwilioVoiceChoiceForm,
    "/v1/intake/twilio/voice/recording": TwilioRecordingForm,
    "/v1/intake/twilio/voice/ack": TwilioVoiceChoiceForm,
    "/v1/intake/twilio/status": TwilioStatusForm,
}
AUTH_BODIES: dict[str, type[BaseModel]] = {"/auth/sign-in": SignInIn, "/auth/second-factor": SecondFactorIn,
                                           "/auth/lang": LangIn}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiIntakeToken": {"type": "http", "scheme": "bearer",
                       "description": "The `api` intake token (PINGAN_INTAKE_TOKENS or var/intake-tokens.json): "
                                      "POST /v1/incidents only"},
    "alertmanagerToken": {"type": "http", "scheme": "bearer",
                          "description": "The `alertmanager` intake token: POST /v1/intake/alertmanager only"},
    "capToken": {"type": "http", "scheme": "bearer", "description": "The `cap` intake token: POST /v1/intake/cap only"},
    "personalToken": {"type": "http", "scheme": "bearer", "bearerFormat": "pa_…",
                      "description": "A person's own token (pingan tokens create); the person's roles decide"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pingan_session",
                      "description": "A signed-in session (POST /auth/sign-in)"},
    "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                   "description": "A session's CSRF token (GET /auth/me), on every unsafe request of a session"},
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
                        "description": "Twilio's HMAC-SHA1 of the public URL and the form, with "
                                       "PINGAN_TWILIO_AUTH_TOKEN"},
}
PUBLIC = {"/healthz", "/readyz", "/auth/csrf", "/auth/sign-in"}
PUBLIC_PREFIX = "/public/"  # the CAP feed, CAP documents and the warnings page (web/public.py): anyone
BEARER_INTAKE = {"/v1/intake/alertmanager": "alertmanagerToken", "/v1/intake/cap": "capToken"}


def security_of(method: str, path: str) -> list[dict[str, list[str]]]:
    """Who may call an operation: any one of the requirements listed (each a set of schemes used together)."""
    if path in PUBLIC or path.startswith(PUBLIC_PREFIX):
        return []
    if path in BEARER_INTAKE:
        return [{BEARER_INTAKE[path]: []}]
    if path.startswith("/v1/intake/twilio/"):
        return [{"twilioSignature": []}]
    session = {"sessionCookie": []} if method == "get" else {"sessionCookie": [], "csrfHeader": []}
    person = [{"personalToken": []}, session]
    if (method, path) == ("post", "/v1/incidents"):
        return [{"apiIntakeToken": []}, *person]  # or a person with incidents.report
    return person


def _body(content: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": content}


def _schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema, its own definitions moved to the components, and a reference to it."""
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the bodies and the security FastAPI cannot infer to a generated OpenAPI document (changed in place)."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    paths = spec.get("paths", {})
    if "/v1/intake/cap" in paths:
        paths["/v1/intake/cap"]["post"]["requestBody"] = _body({
            media: {"schema": {"type": "string", "description": "One CAP 1.2 <alert> (OASIS), UTF-8"},
                    "example": CAP_EXAMPLE} for media in ("application/xml", "application/cap+xml")})
    if "/v1/intake/alertmanager" in paths:
        paths["/v1/intake/alertmanager"]["post"]["requestBody"] = _body(
            {"application/json": {"schema": _schema_of(AmWebhook, schemas)}})
    for path, model in TWILIO_FORMS.items():
        if path in paths:
            paths[path]["post"]["requestBody"] = _body({FORM: {"schema": _schema_of(model, schemas)}})
    ack = paths.get("/v1/intake/twilio/voice/ack", {}).get("post")
    if ack is not None:
        ack["parameters"] = [{"name": "key", "in": "query", "required": True, "schema": {"type": "string"},
                              "description": "The notification a call asks to acknowledge (set by the notifier)"}]
    for path, model in AUTH_BODIES.items():
        if path in paths:
            ref = _schema_of(model, schemas)
            paths[path]["post"]["requestBody"] = _body({"application/json": {"schema": ref}, FORM: {"schema": ref}},
                                                       required=path != "/auth/second-factor")
    for path, operations in paths.items():
        for method, operation in operations.items():
            operation["security"] = security_of(method, path)
    return spec
