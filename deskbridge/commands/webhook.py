"""`deskbridge webhook list`: the organisation's webhook endpoints and REST hooks (never their secrets)."""

from __future__ import annotations

import typer

from deskbridge.commands.common import JsonOption, OrgOption, organisation, print_rows, store
from store.models import WebhookEndpoint
from store.services import webhook_endpoints

app = typer.Typer(help="Outgoing webhooks (made and changed through the API's /v1/webhooks).", no_args_is_help=True)


@app.command("list")
def list_webhooks(org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show the webhook endpoints: URL (credentials hidden), events, format, and whether paused or disabled."""
    with store() as session:
        chosen = organisation(session, org)
        query = webhook_endpoints.select_endpoints(chosen.id).order_by(WebhookEndpoint.id)
        rows = [
            {
                "id": endpoint.id,
                "kind": endpoint.kind.value,
                "url": webhook_endpoints.shown_url(endpoint.url),
                "event_types": list(endpoint.event_types),
                "format": endpoint.payload_format.value,
                "state": _state(endpoint),
                "description": endpoint.description,
            }
            for endpoint in session.scalars(query)
        ]
        slug = chosen.slug
    print_rows(rows, as_json=as_json, empty=f"{slug} has no webhooks: add one with POST /v1/webhooks.")


def _state(endpoint: WebhookEndpoint) -> str:
    if endpoint.disabled_at is not None:
        return f"disabled ({endpoint.disabled_reason or 'by an admin'})"
    return "paused" if endpoint.paused else "active"
