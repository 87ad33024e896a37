"""Every table of the app, imported in one place so that Alembic and the tests see them all."""

from agent_portal.models import (
    Agent,
    Approval,
    AuditEvent,
    CounterOperation,
    DrawerSession,
    PostOffice,
)
from kiosk.auth.models import Throttle, WebSession
from kiosk.citizens.models import Citizen
from kiosk.community.models import (
    ChecklistEntry,
    Household,
    Official,
    Person,
    TeamAssignment,
    Village,
    Visit,
)
from kiosk.payments.models import Biller, IssuedCode, Merchant
from kiosk.places.models import Commune, Province

__all__ = [
    "Agent",
    "Approval",
    "AuditEvent",
    "Biller",
    "ChecklistEntry",
    "Citizen",
    "Commune",
    "CounterOperation",
    "DrawerSession",
    "Household",
    "IssuedCode",
    "Merchant",
    "Official",
    "Person",
    "PostOffice",
    "Province",
    "TeamAssignment",
    "Throttle",
    "Village",
    "Visit",
    "WebSession",
]
