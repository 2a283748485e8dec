"""Contract checks against Kantata's OpenAPI descriptions in ``../shared/kantata/`` (CONTRACT.md, SOURCE.md).

Two calls others use:

    validate_request_body("POST", "/api/v1/status_reports.json", {"status_report": {...}})
    validate_response("GET", "/status_reports/12", 200, body)

Both accept a concrete path or a full URL (with or without ``/api/v1``, ``.json`` and a query string), map
it to the spec's path template, and raise ``ContractViolationError`` listing every problem. The
``*_errors`` variants return the problems instead of raising. Validation uses the maintained
``openapi-schema-validator`` (OAS 3.1/3.2 dialect over ``jsonschema``) with ``referencing`` resolving the
``$ref``s inside each spec file.

Spec quirks handled on purpose (CONTRACT.md §8, SOURCE.md; also in docs/kantata-sandbox.md):
- Object schemas omit ``id`` and the ``Error`` schema omits ``field``: the schemas do not forbid additional
  properties, so both pass as they are. In addition ``check_envelope`` checks what CONTRACT.md §3 says of
  every envelope (string ids, ``results`` pointing into the maps, maps keyed by their object's id).
- Response object attributes may be ``null`` (Kantata sends null for unset attributes; the converted spec
  declares no nullability). Only attributes inside ``components/schemas`` get this leniency; the envelope
  (``count``, ``meta``, ``results``) and every request body stay strict.
- 429 is documented only in prose: an undeclared error status is checked against the ``Errors`` schema.
- ``Story.priority`` is typed integer, yet its description ("Possible values are critical, high, normal,
  low") and every request body use the words (CONTRACT.md §6.7 gotcha 5): in responses it may be either.
  ``RESPONSE_QUIRKS`` lists every such override; request bodies are never relaxed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

SPEC_FILES: Final = (
    "mavenlink-status-reports-api-openapi.yml",
    "mavenlink-task-status-sets-api-openapi.yml",
    "mavenlink-task-statuses-api-openapi.yml",
    "mavenlink-external-references-api-openapi.yml",
    "mavenlink-workspace-task-status-sets-api-openapi.yml",
    "mavenlink-stories-api-openapi.yml",
    "mavenlink-workspaces-api-openapi.yml",
)
# Response attributes whose declared schema contradicts the contract text, by (schema, property): the schema
# used instead, in every file that defines that schema (responses only; see the module docstring).
RESPONSE_QUIRKS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("Story", "priority"): {"type": ["integer", "string", "null"]},
}
API_PREFIX: Final = "/api/v1"
_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean", "array", "object"})


class SpecNotFoundError(FileNotFoundError):
    """The OpenAPI files are not where expected (``../shared/kantata/`` beside the repo, or
    ``KANTATA_OPENAPI_DIR``)."""


class ContractViolationError(AssertionError):
    """A request body or a response does not match the OpenAPI description. ``problems`` lists each one."""

    def __init__(self, what: str, problems: list[str]) -> None:
        super().__init__(f"{what} breaks the OpenAPI contract:\n  - " + "\n  - ".join(problems))
        self.problems = problems


def spec_dir() -> Path:
    """Where the spec files are: ``$KANTATA_OPENAPI_DIR``, else ``<repo>/../shared/kantata``."""
    override = os.environ.get("KANTATA_OPENAPI_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "kantata"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    uri: str  # the registry URI of the (strict or lenient) document holding it
    lenient_uri: str
    spec: Mapping[str, Any]

    @property
    def pointer(self) -> str:
        return "/paths/" + self.template.replace("~", "~0").replace("/", "~1") + "/" + self.method.lower()


def _ref(uri: str, pointer: str) -> dict[str, str]:
    return {"$ref": uri + "#" + quote(pointer, safe="/~")}


def _nullable(node: Any) -> Any:
    """A copy of a schema tree where every typed schema also accepts null."""
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items()}
        if isinstance(out.get("type"), str) and out["type"] in _SCALAR_TYPES:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def _lenient(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))
    schemas = out.get("components", {}).get("schemas", {})
    for name, schema in list(schemas.items()):
        if name not in ("Error", "Errors"):
            schemas[name] = _nullable(schema)
    for (name, prop), override in RESPONSE_QUIRKS.items():
        properties = schemas.get(name, {}).get("properties", {})
        if prop in properties:
            properties[prop] = {**properties[prop], **override}
    return out


class Contract:
    """The loaded descriptions: operations by method and path template, and the schema registry."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        from openapi_schema_validator import OAS32Validator, oas32_format_checker
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self._validator_cls = OAS32Validator
        self._format_checker = oas32_format_checker
        registry: Any = Registry()
        self.operations: list[Operation] = []
        for name, doc in documents.items():
            strict_uri, lenient_uri = f"urn:kantata:{name}", f"urn:kantata:{name}:lenient"
            for uri, contents in ((strict_uri, doc), (lenient_uri, _lenient(doc))):
                registry = registry.with_resource(
                    uri, Resource.from_contents(contents, default_specification=DRAFT202012)
                )
            for template, item in (doc.get("paths") or {}).items():
                regex = re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template))
                for method, spec in item.items():
                    if method.upper() in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                        self.operations.append(
                            Operation(
                                method.upper(), template, re.compile(regex), strict_uri, lenient_uri, spec
                            )
                        )
        # Literal paths before templated ones, so /external_references/create_or_update beats /{id}.
        self.operations.sort(key=lambda op: op.template.count("{"))
        self._registry = registry
        errors_uri = f"urn:kantata:{next(iter(documents))}"
        self._errors_schema = _ref(errors_uri, "/components/schemas/Errors")

    def find(self, method: str, path: str) -> Operation | None:
        """The operation for a concrete ``method`` and path/URL, or None if the spec has no such route."""
        route = api_route(path)
        for op in self.operations:
            if op.method == method.upper() and op.pattern.fullmatch(route):
                return op
        return None

    def _errors(self, schema: Mapping[str, Any], instance: Any) -> list[str]:
        validator = self._validator_cls(schema, registry=self._registry, format_checker=self._format_checker)
        found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        op = self.find(method, path)
        if op is None:
            return [f"no operation {method.upper()} {api_route(path)} in the OpenAPI descriptions"]
        body = _decoded(body)
        request_body = op.spec.get("requestBody")
        if request_body is None:
            # update_account_default and the deletes take no body; an empty object is harmless.
            return [] if body in (None, {}) else [f"{op.method} {op.template} takes no request body"]
        if body is None:
            return ["the request body is required"] if request_body.get("required") else []
        pointer = op.pointer + "/requestBody/content/application~1json/schema"
        return self._errors(_ref(op.uri, pointer), body)

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        body = _decoded(body)
        op = self.find(method, path)
        if op is None:
            # Unknown routes answer 404 with the common error body.
            return (
                self._errors(self._errors_schema, body)
                if status >= 400
                else [f"no operation for {method} {path}"]
            )
        responses = op.spec.get("responses", {})
        if status == 204:
            problems = [] if body in (None, b"", "") else ["a 204 answer must have an empty body"]
            return problems + (
                [] if "204" in responses else [f"{op.method} {op.template} does not declare 204"]
            )
        if str(status) not in responses:
            if status >= 400:  # 429 (documented only in prose) and other error statuses: the Errors schema
                return self._errors(self._errors_schema, body)
            return [f"{op.method} {op.template} does not declare status {status}"]
        declared = responses[str(status)]
        if "content" not in declared:
            return [] if body in (None, b"", "") else [f"status {status} declares no body"]
        uri = op.lenient_uri if status < 400 else op.uri
        problems = self._errors(
            _ref(uri, f"{op.pointer}/responses/{status}/content/application~1json/schema"), body
        )
        if status < 300 and isinstance(body, Mapping):
            problems += check_envelope(body)
        return problems

    def query_errors(self, method: str, path: str, query: Mapping[str, str]) -> list[str]:
        """Query values that do not fit the declared parameter types (e.g. a non-numeric value for the
        integer-typed ``external_reference_service_model_ref`` filter). Undeclared parameters pass."""
        op = self.find(method, path)
        if op is None:
            return []
        params = {p["name"]: p for p in op.spec.get("parameters", []) if p.get("in") == "query"}
        problems: list[str] = []
        for name, value in query.items():
            schema = params.get(name, {}).get("schema", {})
            kind = schema.get("type")
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                problems.append(f"query {name} is typed integer; got {value!r}")
            elif kind == "boolean" and value not in ("true", "false"):
                problems.append(f"query {name} is typed boolean; got {value!r}")
        missing = [n for n, p in params.items() if p.get("required") and n not in query]
        return problems + [f"query {n} is required" for n in missing]


def _decoded(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    if isinstance(body, str):
        return json.loads(body) if body.strip() else None
    return body


def api_route(path: str) -> str:
    """``https://h/api/v1/status_reports/12.json?x=1`` -> ``/status_reports/12``."""
    route = urlsplit(path).path
    if route.startswith(API_PREFIX):
        route = route[len(API_PREFIX) :]
    route = route.removesuffix(".json").rstrip("/")
    return route if route.startswith("/") else "/" + route


def check_envelope(body: Mapping[str, Any]) -> list[str]:
    """CONTRACT.md §3 rules the spec cannot express: ``results`` entries are ``{key, id}`` with string ids
    that name an object in the map ``key``; every map is keyed by its object's string ``id``; ``count`` is
    at least the number of results and ``meta.count`` repeats it."""
    if "results" not in body:
        return []
    problems: list[str] = []
    for index, entry in enumerate(body.get("results") or []):
        key, obj_id = entry.get("key"), entry.get("id")
        if not isinstance(obj_id, str):
            problems.append(f"results[{index}].id must be a string; got {obj_id!r}")
        elif not isinstance(body.get(key), Mapping) or obj_id not in body[key]:
            problems.append(f"results[{index}] names {key}/{obj_id}, which is not in the response")
    for key, objects in body.items():
        if key == "meta" or not isinstance(objects, Mapping):
            continue
        for map_id, obj in objects.items():
            if not isinstance(obj, Mapping) or obj.get("id") != map_id:
                problems.append(f"{key}[{map_id!r}] must be an object whose string id is {map_id!r}")
    count = body.get("count")
    if isinstance(count, int) and count < len(body.get("results") or []):
        problems.append(f"count {count} is less than the {len(body['results'])} results")
    if isinstance(body.get("meta"), Mapping) and body["meta"].get("count") != count:
        problems.append("meta.count must equal count")
    return problems


@functools.cache
def load_contract() -> Contract:
    """Load and index the spec files once. Raises SpecNotFoundError with the looked-up place if missing."""
    import yaml

    directory = spec_dir()
    missing = [name for name in SPEC_FILES if not (directory / name).is_file()]
    if missing:
        raise SpecNotFoundError(
            f"Kantata OpenAPI files not found in {directory} (missing {', '.join(missing)}); "
            "set KANTATA_OPENAPI_DIR to the folder holding mavenlink-*-api-openapi.yml"
        )
    documents: dict[str, dict[str, Any]] = {}
    for name in SPEC_FILES:
        with (directory / name).open(encoding="utf-8") as handle:
            documents[name.removesuffix(".yml")] = yaml.safe_load(handle)
    return Contract(documents)


def request_body_errors(method: str, path: str, body: Any) -> list[str]:
    """The problems with a request body (``[]`` when it matches the spec)."""
    return load_contract().request_errors(method, path, body)


def response_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """The problems with a response (``[]`` when it matches the spec)."""
    return load_contract().response_errors(method, path, status, body)


def validate_request_body(method: str, path: str, body: Any) -> None:
    """Raise ContractViolationError unless ``body`` (dict, JSON text/bytes or None) is what the spec takes
    for ``method`` ``path`` (a concrete path or URL). Raises SpecNotFoundError if the specs are missing."""
    problems = request_body_errors(method, path, body)
    if problems:
        raise ContractViolationError(f"request body of {method.upper()} {api_route(path)}", problems)


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Raise ContractViolationError unless the ``status`` answer with ``body`` matches the spec (plus the
    envelope rules of ``check_envelope``)."""
    problems = response_errors(method, path, status, body)
    if problems:
        raise ContractViolationError(f"{status} response to {method.upper()} {api_route(path)}", problems)


def validate_query(method: str, path: str, query: Mapping[str, str]) -> None:
    """Raise ContractViolationError when a query value does not fit its declared type."""
    problems = load_contract().query_errors(method, path, query)
    if problems:
        raise ContractViolationError(f"query of {method.upper()} {api_route(path)}", problems)


def validate_http_response(response: Any) -> None:
    """``validate_response`` for a ``requests.Response`` (method and URL taken from ``response.request``)."""
    validate_response(response.request.method, response.request.url, response.status_code, response.content)


def validate_prepared_request(request: Any) -> None:
    """``validate_request_body`` for a ``requests.PreparedRequest``: handy in a client's on_request hook."""
    validate_request_body(request.method, request.url, request.body)


def check_recorded(recorded: Iterable[Any]) -> list[str]:
    """Check every answered response in a sandbox request log; return one line per problem."""
    contract = load_contract()
    problems: list[str] = []
    for entry in recorded:
        if entry.status == 0:  # dropped connection: nothing was answered
            continue
        for problem in contract.response_errors(entry.method, entry.path, entry.status, entry.response):
            problems.append(f"{entry.method} {entry.path} -> {entry.status}: {problem}")
    return problems
