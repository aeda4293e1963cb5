"""OCI API change requests turned into a new configuration: static rules, tables, statements.

How it works: each operation takes a snapshot (:class:`~controlplane.oci.views.View`) and the
request's values and returns the :class:`~controlplane.config.schema.DrgConfig` the daemon would run after
it, built with ``model_copy`` from the running one: only the touched route table or distribution
changes. One of OCI's default objects (``autogen-rt-vcn``, ``autogen-rd-all`` ...) that a change
touches becomes an object of the file with the same name, which overrides the default (model.py).
Request values go through the configuration's own models, so a bad CIDR or match reads like the
same mistake in a file; cross-object rules (R14, R20, R44 ...) are checked afterwards by
``config.validate.validate`` in ``oci/api.py``. Nothing here touches the daemon.

Read-only things are refused here: system route tables and distributions (R46), system statements
(R45) and dynamic rules (R15), each with a :class:`OciError` that says why and what to do instead.
An update that changes a static rule's destination or a statement's priority writes the object's
current id into it, so the id does not change (``oci/views.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controlplane.config.effective import EffDistribution, EffRouteTable
from controlplane.config.problems import Problem
from controlplane.config.schema import Distribution, DrgConfig, RouteTable, Statement, StaticRoute
from controlplane.oci import views as m

ModelT = TypeVar("ModelT", bound=BaseModel)


class OciError(Exception):
    """An error answered with OCI's body ``{"code", "message"}`` and an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> OciError:
    return OciError(400, "InvalidParameter", message)


def missing(message: str) -> OciError:
    return OciError(400, "MissingParameter", message)


def not_found(message: str) -> OciError:
    return OciError(404, "NotAuthorizedOrNotFound", message)


def problems_message(problems: Sequence[Problem]) -> str:
    """Validation problems as one error message: ``<rule>: <message>. Fix: <fix>`` each; a problem of one
    DRG of a multi-DRG file names it: ``<rule>: <drg>: <message>. Fix: <fix>``."""
    return " | ".join(f"{p.rule}: {p.drg + ': ' if p.drg else ''}{p.message}. Fix: {p.fix}" for p in problems)


def build(cls: type[ModelT], data: dict[str, Any], where: str) -> ModelT:
    """A configuration model from request values; its validators' errors become 400s."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        parts = []
        for error in exc.errors(include_url=False):
            ctx = error.get("ctx") or {}
            fix = ctx.get("fix")
            text = f"{ctx.get('rule', 'schema')}: {where}: {ctx.get('msg', error['msg'])}"
            parts.append(text + (f". Fix: {fix}" if fix else ""))
        raise invalid(" | ".join(parts)) from None


# ---------------------------------------------------------------------------------------------- lookups

def table(view: m.View, value: str) -> EffRouteTable:
    found = view.effective.find_table(m.name_from_id("drgroutetable", view.drg, value))
    if found is None:
        raise not_found(f"DRG route table {value} not found")
    return found


def distribution(view: m.View, value: str) -> EffDistribution:
    found = view.effective.find_distribution(m.name_from_id("drgroutedistribution", view.drg, value))
    if found is None:
        raise not_found(f"DRG route distribution {value} not found")
    return found


def attachment_name(view: m.View, value: Any, field: str) -> str:
    """An attachment id in a request body -> its name (400 if it is not one of this DRG's)."""
    if not isinstance(value, str) or not value:
        raise missing(f"{field} is required")
    name = m.name_from_id("drgattachment", view.drg, value)
    if name is None or view.effective.find_attachment(name) is None:
        raise invalid(f"{field} {value} is not an attachment of DRG {m.drg_id(view.drg)}")
    return name


def _object(detail: Any, where: str) -> dict[str, Any]:
    if not isinstance(detail, dict):
        raise invalid(f"{where} must be an object")
    return detail


# ---------------------------------------------------------------------------------------------- tables

def _file_table(view: m.View, found: EffRouteTable) -> RouteTable:
    """The table as the file has it (one of OCI's defaults becomes a file object); system tables refused."""
    if found.origin == "system":
        raise invalid(f"R46: {found.name} is a system loopback route table and is read-only. "
                      "Fix: change the tables of the VC and tunnel attachments instead")
    entry = next((t for t in view.config.route_tables if t.name == found.name), None)
    if entry is not None:
        return entry
    return RouteTable(name=found.name, import_distribution=found.import_distribution, ecmp=found.ecmp)


def _with_table(view: m.View, entry: RouteTable) -> DrgConfig:
    tables = list(view.config.route_tables)
    index = next((i for i, t in enumerate(tables) if t.name == entry.name), None)
    if index is None:
        tables.append(entry)
    else:
        tables[index] = entry
    return view.config.model_copy(update={"route_tables": tables})


def update_table(view: m.View, found: EffRouteTable, body: dict[str, Any]) -> DrgConfig:
    """UpdateDrgRouteTable: displayName, importDrgRouteDistributionId, isEcmpEnabled (no tags)."""
    entry = _file_table(view, found)
    for tags in ("definedTags", "freeformTags"):
        if body.get(tags):
            raise invalid(f"{tags}: the emulator keeps no tags")
    update: dict[str, Any] = {}
    if body.get("displayName") is not None:
        if not isinstance(body["displayName"], str):
            raise invalid("displayName must be a string")
        update["display_name"] = body["displayName"]
    if body.get("importDrgRouteDistributionId") is not None:
        update["import_distribution"] = distribution(view, str(body["importDrgRouteDistributionId"])).name
    if body.get("isEcmpEnabled") is not None:
        if not isinstance(body["isEcmpEnabled"], bool):
            raise invalid("isEcmpEnabled must be true or false")
        update["ecmp"] = body["isEcmpEnabled"]
    changed = entry.model_copy(update=update)
    return view.config if changed == entry else _with_table(view, changed)


def remove_import_distribution(view: m.View, found: EffRouteTable) -> DrgConfig:
    entry = _file_table(view, found)
    if entry.import_distribution is None:
        return view.config
    return _with_table(view, entry.model_copy(update={"import_distribution": None}))


# ---------------------------------------------------------------------------------------------- static rules

def _static_route(view: m.View, detail: dict[str, Any], where: str, base: StaticRoute | None) -> StaticRoute:
    """A StaticRoute from AddDrgRouteRuleDetails, or ``base`` with UpdateDrgRouteRuleDetails applied."""
    data: dict[str, Any] = base.model_dump() if base is not None else {}
    if "destinationType" in detail or base is None:
        kind = detail.get("destinationType")
        if not isinstance(kind, str):
            raise missing(f"{where}.destinationType is required (CIDR_BLOCK)")
        data["destination_type"] = kind
    if "destination" in detail or base is None:
        destination = detail.get("destination")
        if not isinstance(destination, str) or not destination:
            raise missing(f"{where}.destination is required")
        data["destination"] = destination
    if "nextHopDrgAttachmentId" in detail or base is None:
        data["next_hop"] = attachment_name(view, detail.get("nextHopDrgAttachmentId"),
                                           f"{where}.nextHopDrgAttachmentId")
    return build(StaticRoute, data, where)


def static_rule(view: m.View, found: EffRouteTable, rid: Any, action: str) -> dict[str, Any]:
    """The static rule with id ``rid``; a dynamic rule's id is refused with the reason (R15)."""
    if not isinstance(rid, str) or not rid:
        raise missing("a route rule id is required")
    rule = next((r for r in m.rules_json(view, found.name) if r["id"] == rid), None)
    if rule is None:
        raise invalid(f"no route rule {rid} in DRG route table {found.id}")
    if rule["routeType"] != "STATIC":
        raise invalid(f"R15: {rid} is a DYNAMIC rule ({rule['destination']} via {rule['attributes']['nextHop']}, "
                      f"provenance {rule['routeProvenance']}), imported through distribution "
                      f"{found.import_distribution or 'none'}: dynamic rules cannot be {action}. Fix: withdraw "
                      "the route on the peer, or change the table's import distribution")
    return rule


def add_rules(view: m.View, found: EffRouteTable, details: list[Any]) -> tuple[DrgConfig, list[str]]:
    """AddDrgRouteRules: the new configuration and the destinations added."""
    entry = _file_table(view, found)
    added = [_static_route(view, _object(d, f"routeRules[{i}]"), f"routeRules[{i}]", None)
             for i, d in enumerate(details)]
    new = _with_table(view, entry.model_copy(update={"static_routes": [*entry.static_routes, *added]}))
    return new, [r.destination for r in added]


def update_rules(view: m.View, found: EffRouteTable, details: list[Any]) -> tuple[DrgConfig, list[str]]:
    """UpdateDrgRouteRules: only the fields given change; the rule keeps its id."""
    entry = _file_table(view, found)
    routes = list(entry.static_routes)
    changed: list[str] = []
    for i, raw in enumerate(details):
        where = f"routeRules[{i}]"
        detail = _object(raw, where)
        rule = static_rule(view, found, detail.get("id"), "updated")
        index = next(j for j, r in enumerate(routes) if r.destination == rule["destination"])
        route = _static_route(view, detail, where, routes[index])
        if route.destination != rule["destination"] and route.id is None:
            route = route.model_copy(update={"id": rule["id"]})  # Terraform reads it back by id
        routes[index] = route
        changed.append(route.destination)
    return _with_table(view, entry.model_copy(update={"static_routes": routes})), changed


def remove_rules(view: m.View, found: EffRouteTable, ids: list[Any]) -> DrgConfig:
    entry = _file_table(view, found)
    gone = {static_rule(view, found, rid, "removed")["destination"] for rid in ids}
    return _with_table(view, entry.model_copy(update={
        "static_routes": [r for r in entry.static_routes if r.destination not in gone]}))


def static_rules(view: m.View, name: str, destinations: list[str]) -> list[dict[str, Any]]:
    """The DrgRouteRule JSON of the static rules with these destinations, in that order."""
    rules = {r["destination"]: r for r in m.rules_json(view, name) if r["routeType"] == "STATIC"}
    return [rules[d] for d in destinations if d in rules]


# ---------------------------------------------------------------------------------------------- statements

def _file_distribution(view: m.View, found: EffDistribution) -> Distribution:
    if found.origin == "system":
        raise invalid(f"R46: {found.name} is a system loopback distribution and is read-only. "
                      "Fix: change the import distribution of the VC's route table instead")
    entry = next((d for d in view.config.distributions if d.name == found.name), None)
    if entry is not None:
        return entry
    return Distribution(name=found.name, type=found.type,
                        statements=[Statement(priority=s.priority, match=s.match)
                                    for s in found.statements if not s.system])


def _with_distribution(view: m.View, entry: Distribution) -> DrgConfig:
    dists = list(view.config.distributions)
    index = next((i for i, d in enumerate(dists) if d.name == entry.name), None)
    if index is None:
        dists.append(entry)
    else:
        dists[index] = entry
    return view.config.model_copy(update={"distributions": dists})


def _match(view: m.View, criteria: Any, where: str) -> Any:
    """``matchCriteria`` -> the file's ``match`` value (R19: at most one criterion; none = all, R9)."""
    if not isinstance(criteria, list):
        raise missing(f"{where}.matchCriteria must be a list")
    if not criteria:
        return "all"
    if len(criteria) > 1:
        raise invalid(f"R19: {where} has {len(criteria)} match criteria, OCI allows one. "
                      "Fix: split it into one statement per criterion")
    c = criteria[0]
    kind = c.get("matchType") if isinstance(c, dict) else None
    if kind == "MATCH_ALL":
        return "all"
    if kind == "DRG_ATTACHMENT_TYPE":
        return {"attachment_type": c.get("attachmentType")}
    if kind == "DRG_ATTACHMENT_ID":
        return {"attachment": attachment_name(view, c.get("drgAttachmentId"),
                                              f"{where}.matchCriteria[0].drgAttachmentId")}
    raise invalid(f"{where}.matchCriteria[0].matchType must be DRG_ATTACHMENT_TYPE, DRG_ATTACHMENT_ID or "
                  f"MATCH_ALL, not {kind!r}")


def _priority(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise missing(f"{where}.priority must be an integer")
    return value


def user_statement(view: m.View, found: EffDistribution, sid: Any, action: str) -> int:
    """The priority of the user statement with id ``sid``; system statements are refused (R45)."""
    if not isinstance(sid, str) or not sid:
        raise missing("a statement id is required")
    priority = next((p for p, i in m.statement_ids(view, found.name).items() if i == sid), None)
    if priority is None:
        raise invalid(f"no statement {sid} in DRG route distribution {found.id}")
    if next(s for s in found.statements if s.priority == priority).system:
        raise invalid(f"R45: {sid} (priority {priority}) is a system statement importing a loopback attachment "
                      f"and cannot be {action}. Fix: leave the system statements alone; they follow the "
                      "IPSec-over-FastConnect tunnels")
    return priority


def add_statements(view: m.View, found: EffDistribution, details: list[Any]) -> tuple[DrgConfig, list[int]]:
    """AddDrgRouteDistributionStatements: the new configuration and the priorities added."""
    entry = _file_distribution(view, found)
    added = []
    for i, raw in enumerate(details):
        where = f"statements[{i}]"
        detail = _object(raw, where)
        if detail.get("action", "ACCEPT") != "ACCEPT":
            raise invalid(f"R19: {where}.action {detail.get('action')!r}: ACCEPT is the only action. "
                          "Fix: write action ACCEPT")
        added.append(build(Statement, {"priority": _priority(detail.get("priority"), where),
                                       "match": _match(view, detail.get("matchCriteria"), where)}, where))
    new = _with_distribution(view, entry.model_copy(update={"statements": [*entry.statements, *added]}))
    return new, [s.priority for s in added]


def update_statements(view: m.View, found: EffDistribution, details: list[Any]) -> tuple[DrgConfig, list[int]]:
    """UpdateDrgRouteDistributionStatements: priority and/or matchCriteria; the id stays."""
    entry = _file_distribution(view, found)
    statements = list(entry.statements)
    changed: list[int] = []
    for i, raw in enumerate(details):
        where = f"statements[{i}]"
        detail = _object(raw, where)
        sid = detail.get("id")
        index = next(j for j, s in enumerate(statements)
                     if s.priority == user_statement(view, found, sid, "updated"))
        old = statements[index]
        data: dict[str, Any] = {"priority": old.priority, "match": old.match, "id": old.id}
        if detail.get("priority") is not None:
            data["priority"] = _priority(detail["priority"], where)
        if detail.get("matchCriteria") is not None:
            data["match"] = _match(view, detail["matchCriteria"], where)
        if data["priority"] != old.priority and old.id is None:
            data["id"] = sid
        statements[index] = build(Statement, data, where)
        changed.append(data["priority"])
    return _with_distribution(view, entry.model_copy(update={"statements": statements})), changed


def remove_statements(view: m.View, found: EffDistribution, ids: list[Any]) -> DrgConfig:
    entry = _file_distribution(view, found)
    gone = {user_statement(view, found, sid, "removed") for sid in ids}
    return _with_distribution(view, entry.model_copy(update={
        "statements": [s for s in entry.statements if s.priority not in gone]}))


def statements_by_priority(view: m.View, name: str, priorities: list[int]) -> list[dict[str, Any]]:
    by_priority = {s["priority"]: s for s in m.statements_json(view, name)}
    return [by_priority[p] for p in priorities if p in by_priority]
