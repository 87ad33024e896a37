"""Every table of the app, imported in one place so that Alembic and the tests see them all."""

from agent_portal.models import (
    Agent,
    Approval,
    AuditEvent,
    CounterOperation,
    DrawerSession,
    PostOffice,
)
from kiosk.adoption.models import (
    AdoptionDenominator,
    AdoptionTarget,
    CitizenMilestones,
    CohortCounts,
    DaysToFirstPayment,
    LastActiveDays,
    MonthlyActive,
    RollupState,
)
from kiosk.api.models import ApiCredential, IdempotencyRecord
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
from kiosk.welfare.models import BeneficiaryRow, PayCycle, WelfareProgramme

__all__ = [
    "AdoptionDenominator",
    "AdoptionTarget",
    "Agent",
    "ApiCredential",
    "Approval",
    "AuditEvent",
    "BeneficiaryRow",
    "Biller",
    "ChecklistEntry",
    "Citizen",
    "CitizenMilestones",
    "CohortCounts",
    "Commune",
    "CounterOperation",
    "DaysToFirstPayment",
    "DrawerSession",
    "Household",
    "IdempotencyRecord",
    "IssuedCode",
    "LastActiveDays",
    "Merchant",
    "MonthlyActive",
    "Official",
    "PayCycle",
    "Person",
    "PostOffice",
    "Province",
    "RollupState",
    "TeamAssignment",
    "Throttle",
    "Village",
    "Visit",
    "WebSession",
    "WelfareProgramme",
]
