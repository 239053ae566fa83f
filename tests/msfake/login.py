"""The identity platform's token endpoint: ``POST {authority}/{tenant}/oauth2/v2.0/token``
with the client credentials grant (a secret, a certificate's signed assertion, or a
federated assertion), answering like Entra ID (AADSTS errors included)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from msfake.state import TENANT, CloudState, Token, new_guid

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def aad_error(status: int, error: str, code: int, description: str) -> web.Response:
    trace, correlation = new_guid(), new_guid()
    return web.json_response({
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
                             f"Correlation ID: {correlation}\r\nTimestamp: 2026-11-02 09:00:00Z",
        "error_codes": [code], "timestamp": "2026-11-02 09:00:00Z", "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }, status=status)


def _jwt(claims: dict[str, Any]) -> str:
    """Shaped like an Entra access token (a JWT; the signature is not meant to verify)."""
    header = {"typ": "JWT", "alg": "RS256", "kid": "fake"}
    return ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                     _b64(secrets.token_bytes(32))))


class Login:
    def __init__(self, state: CloudState) -> None:
        self.state = state
        self.url = ""  # set when the site starts: the authority
        self.graph_audience = ""  # the fake Graph's base URL: its tokens carry ``roles``

    async def token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        if tenant != TENANT:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", 70003, "The app requested an "
                             "unsupported grant type.")
        client = str(form.get("client_id", ""))
        scope = str(form.get("scope", ""))
        if not scope.endswith("/.default"):
            return aad_error(400, "invalid_scope", 1002012, f"The provided value for scope "
                             f"{scope} is not valid. Client credential flows must have a scope "
                             "value with /.default suffixed to the resource identifier.")
        problem = self._authenticate(client, form, f"{self.url}/{tenant}/oauth2/v2.0/token")
        if problem is not None:
            return problem
        audience = scope.removesuffix("/.default")
        now = int(time.time())
        claims = {"aud": audience, "iss": f"https://sts.windows.net/{tenant}/", "iat": now,
                  "nbf": now, "exp": now + 3599, "appid": client, "tid": tenant,
                  "oid": new_guid(), "idtyp": "app"}
        if audience == self.graph_audience:
            claims["roles"] = list(self.state.graph_permissions)
        access = _jwt(claims)
        self.state.tokens[access] = Token(audience, client)
        return web.json_response({"token_type": "Bearer", "expires_in": 3599,
                                  "ext_expires_in": 3599, "access_token": access})

    def _authenticate(self, client: str, form: Any, endpoint: str) -> web.Response | None:
        known = client in self.state.secrets or client in self.state.certificates \
            or client in self.state.federated
        if not known:
            return aad_error(400, "unauthorized_client", 700016, f"Application with identifier "
                             f"'{client}' was not found in the directory.")
        if "client_secret" in form:
            if self.state.secrets.get(client) != form["client_secret"]:
                return aad_error(401, "invalid_client", 7000215, "Invalid client secret "
                                 "provided. Ensure the secret being sent in the request is the "
                                 "client secret value, not the client secret ID.")
            return None
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            assertion = str(form.get("client_assertion", ""))
            if self.state.federated.get(client) == assertion:
                return None
            if self._signed_by_certificate(client, assertion, endpoint):
                return None
            return aad_error(401, "invalid_client", 700027, "The certificate with identifier "
                             "used to sign the client assertion is not registered on "
                             "application.")
        return aad_error(401, "invalid_client", 7000218, "The request body must contain the "
                         "following parameter: 'client_assertion' or 'client_secret'.")

    def _signed_by_certificate(self, client: str, assertion: str, endpoint: str) -> bool:
        pem = self.state.certificates.get(client)
        parts = assertion.split(".")
        if pem is None or len(parts) != 3:
            return False
        cert = x509.load_pem_x509_certificate(pem)
        header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
        thumbprints = {_b64(cert.fingerprint(hashes.SHA1())),
                       _b64(cert.fingerprint(hashes.SHA256()))}
        given = {str(header.get(k, "")).rstrip("=") for k in ("x5t", "x5t#S256")}
        if not thumbprints & given:
            return False
        if claims.get("iss") != client or claims.get("sub") != client \
                or claims.get("aud") != endpoint:
            return False
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        scheme = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH) \
            if header.get("alg") == "PS256" else padding.PKCS1v15()
        try:
            key.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), scheme,
                       hashes.SHA256())
        except Exception:
            return False
        return True


    async def managed_identity(self, request: web.Request) -> web.Response:
        """App Service's managed identity endpoint (``IDENTITY_ENDPOINT``, 2019-08-01)."""
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response({"error": "unauthorized"}, status=401)
        resource = request.query.get("resource", "")
        now = int(time.time())
        claims = {"aud": resource, "tid": TENANT, "iat": now, "exp": now + 3599,
                  "appid": MANAGED_IDENTITY, "idtyp": "app"}
        if resource == self.graph_audience:
            claims["roles"] = list(self.state.graph_permissions)
        access = _jwt(claims)
        self.state.tokens[access] = Token(resource, MANAGED_IDENTITY)
        return web.json_response({"access_token": access, "expires_on": str(now + 3599),
                                  "resource": resource, "token_type": "Bearer",
                                  "client_id": MANAGED_IDENTITY})


IDENTITY_HEADER = "fake-identity-header"
MANAGED_IDENTITY = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"


def routes(login: Login) -> list[web.RouteDef]:
    return [web.post("/{tenant}/oauth2/v2.0/token", login.token),
            web.get("/msi/token", login.managed_identity)]
