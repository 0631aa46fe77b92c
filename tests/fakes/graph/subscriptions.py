"""The fake's change-notification subscriptions, with Graph's validation handshake and real POSTs.

Creating a subscription validates its URLs as Graph does: a POST of `?validationToken=…` that must
be answered 200 with the token as text/plain within 10 s. Notifications are POSTed to the
receiver over HTTP with the subscription's clientState, in Graph's collection shape. Besides
`users` and `groups`, a person's Outlook events (`users/{id or UPN}/events`, at most 4230 minutes)
can be subscribed to; the fake's calendars notify them of every change (`notify_events`).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

MAX_LIFETIME = timedelta(minutes=41760)
OUTLOOK_MAX_LIFETIME = timedelta(minutes=4230)
RESOURCES = {"users", "groups"}
_EVENTS = re.compile(r"^users/([^/]+)/events$", re.IGNORECASE)


def is_events_resource(resource: str) -> bool:
    """Whether `resource` is a person's Outlook events (`users/{id}/events`)."""
    return _EVENTS.match(resource.strip("/")) is not None


def _lifetime(resource: str) -> timedelta:
    return OUTLOOK_MAX_LIFETIME if is_events_resource(resource) else MAX_LIFETIME


CHANGE_TYPES = {"created", "updated", "deleted"}


@dataclass
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires_at: datetime

    def to_graph(self, application_id: str) -> dict[str, Any]:
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": _format(self.expires_at),
            "creatorId": application_id,
            "latestSupportedTlsVersion": "v1_2",
            "notificationContentType": "application/json",
        }


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # Graph writes 7 digits


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _invalid(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": {"code": "InvalidRequest", "message": message}}


class Subscriptions:
    """Subscriptions by id; `validate_urls=False` skips the handshake (no receiver running)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.validate_urls = True
        self.items: dict[str, Subscription] = {}
        self.lock = threading.Lock()

    def create(self, body: Any, application_id: str) -> tuple[int, dict[str, Any]]:
        """POST /subscriptions."""
        if not isinstance(body, dict):
            return _invalid("The request body must be a subscription object.")
        resource = str(body.get("resource", "")).strip("/")
        if resource not in RESOURCES and not is_events_resource(resource):
            return _invalid(f"Resource '{resource}' is not supported by this fake.")
        change_type = str(body.get("changeType", ""))
        if not change_type or not set(change_type.split(",")) <= CHANGE_TYPES:
            return _invalid(f"Invalid changeType '{change_type}'.")
        notification_url = body.get("notificationUrl")
        if not isinstance(notification_url, str) or not notification_url:
            return _invalid("notificationUrl is required.")
        lifecycle_url = body.get("lifecycleNotificationUrl")
        problem = self._check_expiry(body.get("expirationDateTime"), _lifetime(resource))
        if isinstance(problem, tuple):
            return problem
        if self.validate_urls:
            for url in filter(None, (notification_url, lifecycle_url)):
                if not self._validate(str(url)):
                    return _invalid(
                        "Subscription validation request failed. Notification endpoint must respond with 200 OK "
                        "to validation request."
                    )
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=resource,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url if isinstance(lifecycle_url, str) else None,
            client_state=body.get("clientState"),
            expires_at=problem,
        )
        with self.lock:
            self.items[subscription.id] = subscription
        return 201, subscription.to_graph(application_id)

    def update(self, subscription_id: str, body: Any, application_id: str) -> tuple[int, dict[str, Any]]:
        """PATCH /subscriptions/{id}: a new expiry and/or notificationUrl."""
        with self.lock:
            subscription = self.items.get(subscription_id)
        if subscription is None:
            return 404, _not_found(subscription_id)
        if not isinstance(body, dict):
            return _invalid("The request body must be an object.")
        if "expirationDateTime" in body:
            problem = self._check_expiry(body["expirationDateTime"], _lifetime(subscription.resource))
            if isinstance(problem, tuple):
                return problem
            subscription.expires_at = problem
        if isinstance(body.get("notificationUrl"), str):
            subscription.notification_url = body["notificationUrl"]
        return 200, subscription.to_graph(application_id)

    def delete(self, subscription_id: str) -> tuple[int, dict[str, Any] | None]:
        """DELETE /subscriptions/{id}."""
        with self.lock:
            gone = self.items.pop(subscription_id, None)
        return (204, None) if gone else (404, _not_found(subscription_id))

    def _check_expiry(self, value: object, lifetime: timedelta = MAX_LIFETIME) -> datetime | tuple[int, dict[str, Any]]:
        expires_at = _parse(value)
        if expires_at is None:
            return _invalid("expirationDateTime is required and must be a date and time.")
        now = datetime.now(UTC)
        if expires_at <= now:
            return _invalid("Subscription expiration must be in the future.")
        if expires_at > now + lifetime:
            return _invalid(
                f"Subscription expiration can only be {lifetime // timedelta(minutes=1)} minutes in the future."
            )
        return expires_at

    def _validate(self, url: str) -> bool:
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        separator = "&" if "?" in url else "?"
        try:
            response = httpx.post(
                f"{url}{separator}validationToken={quote(token)}",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=10.0,
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == token

    # --- sending, for tests ----------------------------------------------------------------------

    def notify(self, subscription_id: str, *, change_type: str = "updated", resource_id: str | None = None) -> int:
        """POST a change notification for the subscription to its notificationUrl; the receiver's status."""
        subscription = self.items[subscription_id]
        object_id = resource_id or str(uuid.uuid4())
        item = {
            "id": secrets.token_hex(8),
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": _format(subscription.expires_at),
            "changeType": change_type,
            "resource": f"{subscription.resource.capitalize()}/{object_id}",
            "tenantId": self.tenant_id,
            "resourceData": {
                "@odata.type": f"#Microsoft.Graph.{subscription.resource[:-1].capitalize()}",
                "@odata.id": f"{subscription.resource.capitalize()}/{object_id}",
                "id": object_id,
                "organizationId": self.tenant_id,
            },
        }
        if subscription.client_state is not None:
            item["clientState"] = subscription.client_state
        return httpx.post(subscription.notification_url, json={"value": [item]}, timeout=10.0).status_code

    def notify_events(self, names: set[str], user_id: str, event_id: str, change_type: str) -> None:
        """POST a change notification to every subscription on the events of the user called `names`.

        As Graph sends for Outlook events: `resource` "Users/{id}/Events/{event id}" and resourceData
        with the event id. A receiver that is down is Graph's problem, not the test's.
        """
        with self.lock:
            targets = [
                subscription
                for subscription in self.items.values()
                if (match := _EVENTS.match(subscription.resource)) is not None
                and match.group(1).lower() in names
                and change_type in subscription.change_type.split(",")
            ]
        for subscription in targets:
            item: dict[str, Any] = {
                "id": secrets.token_hex(8),
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": _format(subscription.expires_at),
                "changeType": change_type,
                "resource": f"Users/{user_id}/Events/{event_id}",
                "tenantId": self.tenant_id,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": f"Users/{user_id}/Events/{event_id}",
                    "id": event_id,
                },
            }
            if subscription.client_state is not None:
                item["clientState"] = subscription.client_state
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(subscription.notification_url, json={"value": [item]}, timeout=10.0)

    def lifecycle(self, subscription_id: str, event: str) -> int:
        """POST a lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed)."""
        subscription = self.items[subscription_id]
        item: dict[str, Any] = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": _format(subscription.expires_at),
            "tenantId": self.tenant_id,
            "lifecycleEvent": event,
        }
        if subscription.client_state is not None:
            item["clientState"] = subscription.client_state
        url = subscription.lifecycle_url or subscription.notification_url
        if event == "subscriptionRemoved":
            with self.lock:
                self.items.pop(subscription_id, None)
        return httpx.post(url, json={"value": [item]}, timeout=10.0).status_code


def _not_found(subscription_id: str) -> dict[str, Any]:
    return {"error": {"code": "ResourceNotFound", "message": f"The object was not found: {subscription_id}"}}
