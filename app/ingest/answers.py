"""The answer rules of the write routes: pure functions from what the store did with a
request's points (a WriteResult) to what its client is told (an Answer). The store runs the
rule inside its transaction, so an Idempotency-Key's receipt records exactly that answer."""

from dataclasses import dataclass

from app.core.errors import ApiError, envelope, metric_limit_exceeded, series_limit_exceeded
from app.core.writes import Answer


@dataclass(frozen=True)
class Limits:
    """The limits a refusal names: the tenant's metrics, a metric's series, the tenant's
    series."""

    metrics: int
    series_per_metric: int
    series: int

    @classmethod
    def of(cls, config, tenant):
        """The limits in force for ``tenant`` under ``config``."""
        own = tenant.limits(config)
        return cls(own["max_metrics"], config["METRICS_MAX_SERIES_PER_METRIC"], own["max_series"])

    def metric_refusal(self, name):
        """The 422 METRIC_LIMIT_EXCEEDED of a new metric ``name``."""
        return metric_limit_exceeded(name, self.metrics)

    def series_refusal(self, name):
        """The 422 SERIES_LIMIT_EXCEEDED of a new series of ``name``."""
        return series_limit_exceeded(name, self.series_per_metric, self.series)


def type_mismatch(existing, wanted):
    """The 409 for a point of the other type than its metric's."""
    message = f"Metric '{existing.name}' is a {existing.type} metric; it cannot take a {wanted}"
    return ApiError("METRIC_TYPE_MISMATCH", message, status=409)


def item_error(index, error):
    """A refused batch item as the answer lists it."""
    described = {"index": index, "code": error.code, "message": error.message}
    if error.details:
        described["details"] = error.details
    return described


def nothing_valid(summary):
    """The 400 of a batch none of whose items could be written."""
    return ApiError("VALIDATION_ERROR", "No metric in the batch was valid", extra=summary)


def one_point(point, message, limits):
    """The rule of POST /counter and /value: 201 (202 queued), 409 or 422."""

    def respond(result):
        if result.limited:
            return Answer(422, envelope(limits.metric_refusal(point.name)))
        if result.series_limited:
            return Answer(422, envelope(limits.series_refusal(point.name)))
        if result.mismatched:
            return Answer(409, envelope(type_mismatch(result.mismatched[0][1], point.type)))
        if result.queued:
            return Answer(202, {"success": True, "queued": 1})
        return Answer(201, {"success": True, "message": message})

    return respond


def batch(points, indexes, item_errors, limits):
    """The rule of POST /batch: the items refused before (``item_errors``) and by the store,
    by item index; 201 (202 queued) when any point was written, else 400."""

    def respond(result):
        errors = list(item_errors)
        for position, existing in result.mismatched:
            refusal = type_mismatch(existing, points[position].type)
            errors.append(item_error(indexes[position], refusal))
        for position in result.limited:
            refusal = limits.metric_refusal(points[position].name)
            errors.append(item_error(indexes[position], refusal))
        for position in result.series_limited:
            refusal = limits.series_refusal(points[position].name)
            errors.append(item_error(indexes[position], refusal))
        errors.sort(key=lambda error: error["index"])
        summary = {"accepted": len(result.written), "rejected": len(errors), "errors": errors}
        if not result.written:
            return Answer(400, envelope(nothing_valid(summary)))
        if result.queued:
            return Answer(202, {"success": True, "queued": len(result.written), **summary})
        return Answer(201, {"success": True, **summary})

    return respond


def stathat(limits):
    """The rule of StatHat's routes: 200 ``{"status", "msg"}``, or 409 / 422 in that form."""

    def respond(result):
        if result.limited:
            message = f"METRIC_LIMIT_EXCEEDED: at most {limits.metrics} metrics may exist"
            return Answer(422, {"status": 422, "msg": message})
        if result.mismatched:
            metric = result.mismatched[0][1]
            message = f"stat {metric.name} is a {metric.type} stat"
            return Answer(409, {"status": 409, "msg": message})
        return Answer(200, {"status": 200, "msg": "ok"})

    return respond
