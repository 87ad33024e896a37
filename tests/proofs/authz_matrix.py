"""The authorization matrix: who may succeed on every endpoint of the route map.

One `Entry` per endpoint of `app.url_map` (bench/proofs/authz.py fails on any endpoint without
one). ``own`` is the set of roles that may succeed on the object the principal roles own, or on
the route when it names no object; ``other`` the roles that may succeed on the object of
another citizen / post office / commune / province (None: the route names no object). POSTs use
``post_own`` / ``post_other`` when they differ from the page's GET. ``args`` fill the URL (an
`Obj` is the world's own or other object of that name, a string is used as it is); ``body`` and
``query`` likewise.

The world (bench/proofs/authz.py `build_world`): citizen A ("citizen", commune 00226) and B
("other_citizen", commune 01273 in province 04); post office P in 00226 ("agent",
"supervisor") and Q in 00004 ("other_agent", "other_supervisor"); commune C = 00226 with
villages V1 (the "team_member"'s) and V1b ("other_team_member"'s), C2 = 00004 with V3;
"commune_official" of C, "other_commune_official" of C2, "province_official" of 01,
"other_province_official" of 04, "admin"; API credentials: "api_system" (every scope, commune
00226 only), "api_system_other_scope" (only
indicators:read, commune 00226), "api_agent" (the agent's device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = (
    "anonymous",
    "citizen",
    "other_citizen",
    "agent",
    "supervisor",
    "other_agent",
    "other_supervisor",
    "team_member",
    "other_team_member",
    "commune_official",
    "other_commune_official",
    "province_official",
    "other_province_official",
    "admin",
    "api_system",
    "api_system_other_scope",
    "api_agent",
)


@dataclass(frozen=True)
class Obj:
    """An object of the world: its "own" or "other" value, by the cell's variant."""

    name: str


R = frozenset
ALL = R(ROLES)
NOBODY: frozenset[str] = R()
CITIZENS = R({"citizen", "other_citizen"})
CITIZEN = R({"citizen"})
OTHER_CITIZEN = R({"other_citizen"})
AGENTS = R({"agent", "supervisor", "other_agent", "other_supervisor"})
SUPERVISORS = R({"supervisor", "other_supervisor"})
OFFICIALS = R(
    {
        "team_member",
        "other_team_member",
        "commune_official",
        "other_commune_official",
        "province_official",
        "other_province_official",
        "admin",
    }
)
# Who sees a commune's pages: its team members and official, its province's official, admins.
SEE_C = R({"team_member", "other_team_member", "commune_official", "province_official", "admin"})
SEE_C2 = R({"other_commune_official", "province_official", "admin"})
EDIT_C = R({"commune_official", "admin"})
EDIT_C2 = R({"other_commune_official", "admin"})
# Households of village V1 (own) and V3 of commune C2 (other).
SEE_V1 = R({"team_member", "commune_official", "province_official", "admin"})
WORK_V1 = R({"team_member", "commune_official", "admin"})
WORK_V3 = R({"other_commune_official", "admin"})
WORKERS = R({"team_member", "other_team_member", "commune_official", "other_commune_official"}) | {
    "admin"
}
MANAGERS = R({"commune_official", "other_commune_official", "admin"})
WELFARE_READERS = R(
    {
        "commune_official",
        "other_commune_official",
        "province_official",
        "other_province_official",
        "admin",
    }
)
READ_C = R({"commune_official", "province_official", "admin"})
READ_C2 = R({"other_commune_official", "province_official", "admin"})


@dataclass(frozen=True)
class Entry:
    own: frozenset[str]
    other: frozenset[str] | None = None
    post_own: frozenset[str] | None = None
    post_other: frozenset[str] | None = None
    args: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    api: bool = False
    # A GET of an allowed role on its own object must succeed (False: it may redirect or 404
    # for reasons of state, e.g. an enrolment page for an enrolled person).
    check_allowed: bool = True
    # Run on a fresh session of the role (the request may end its session).
    fresh_session: bool = False
    # The request may end every session of its principal: run such endpoints last.
    resets_sessions: bool = False
    note: str = ""

    @property
    def has_variants(self) -> bool:
        return self.other is not None or self.post_other is not None

    def allowed(self, variant: str, method: str = "GET") -> frozenset[str]:
        if method != "GET" and self.post_own is not None:
            if variant == "other":
                return self.post_other if self.post_other is not None else NOBODY
            return self.post_own
        if variant == "other":
            return self.other if self.other is not None else NOBODY
        return self.own


def public(**options: Any) -> Entry:
    return Entry(ALL, **options)


def api(own: frozenset[str], other: frozenset[str] | None = None, **options: Any) -> Entry:
    return Entry(own, other, api=True, **options)


PIN = "246810"
_ON_BEHALF = {
    "phone": Obj("phone"),
    "pin": PIN,
    "amount_vnd": 200_000,
    "last4": Obj("last4"),
    "face_matched": True,
}
_API_AGENT = R({"api_agent"})
_API_SYSTEM = R({"api_system"})
_API_CODES = R({"api_system", "api_agent"})

MATRIX: dict[str, Entry] = {
    # --- Public pages, health, assets ------------------------------------------------------------
    "kiosk.home": public(),
    "kiosk.healthz": public(),
    "kiosk.readyz": public(),
    "metrics.metrics": public(note="a scraper on this host (the test client is 127.0.0.1)"),
    "static": public(args={"filename": "softatm.css"}),
    "agent_static.static": public(args={"filename": "camera.js"}, check_allowed=False),
    "i18n.choose_language": public(body={"lang": "en", "next": "/"}),
    "api.openapi_document": public(),
    # --- Citizens: registration, sign-in, settings -----------------------------------------------
    "citizens.register": public(),
    "citizens.sign_in": public(),
    "citizens.sign_out": public(fresh_session=True),
    "citizens.set_pin": public(),
    "citizens.settings": Entry(CITIZENS),
    "citizens.sign_out_everywhere": Entry(CITIZENS, resets_sessions=True),
    "citizens.change_pin": Entry(CITIZENS),
    "citizens.two_factor_setup": Entry(CITIZENS),
    "citizens.two_factor_qr": Entry(CITIZENS, check_allowed=False),
    "citizens.two_factor_disable": Entry(CITIZENS),
    "citizens.step_up": Entry(CITIZENS, check_allowed=False),
    # --- Wallet ----------------------------------------------------------------------------------
    "wallet.home": Entry(CITIZENS),
    "wallet.history": Entry(CITIZENS),
    "wallet.account_qr": Entry(CITIZENS),
    "wallet.account_qr_png": Entry(CITIZENS),
    "wallet.receipt": Entry(CITIZEN, OTHER_CITIZEN, args={"transfer_id": Obj("wallet_transfer")}),
    # --- Codes -----------------------------------------------------------------------------------
    "codes.new_withdrawal": Entry(CITIZENS, body={"amount": "500000", "pin": PIN}),
    "codes.new_payment": Entry(CITIZENS),
    "codes.show": Entry(CITIZEN, OTHER_CITIZEN, args={"code_id": Obj("code")}),
    "codes.qr_png": Entry(CITIZEN, OTHER_CITIZEN, args={"code_id": Obj("code")}),
    "codes.cancel": Entry(CITIZEN, OTHER_CITIZEN, args={"code_id": Obj("code")}),
    # --- Merchants (market stalls) ---------------------------------------------------------------
    "merchants.mine": Entry(CITIZENS),
    "merchants.register": Entry(CITIZENS, body={"ten": "Hàng bún"}),
    "merchants.print_qr": Entry(CITIZEN, OTHER_CITIZEN, args={"stall_code": Obj("stall")}),
    "merchants.qr_png": Entry(CITIZEN, OTHER_CITIZEN, args={"stall_code": Obj("stall")}),
    "merchants.pay": Entry(CITIZENS),
    "merchants.pay_stall": Entry(
        CITIZENS,
        CITIZENS,
        args={"stall_code": Obj("stall")},
        check_allowed=False,
        note="nobody pays their own stall (400)",
    ),
    "merchants.confirm_payment": Entry(CITIZENS),
    "merchants.receipt": Entry(
        CITIZEN,
        OTHER_CITIZEN,
        args={"transfer_id": Obj("wallet_transfer")},
        check_allowed=False,
        note="the world's transfers are cash-ins, not stall payments: 404 even for the owner",
    ),
    # --- Counter (agents) ------------------------------------------------------------------------
    "agent_auth.sign_in": public(),
    "agent_auth.sign_out": public(fresh_session=True),
    "agent_auth.totp": public(check_allowed=False, note="only during a sign-in"),
    "agent_auth.enrol": Entry(AGENTS, check_allowed=False),
    "agent_auth.enrol_qr": Entry(AGENTS, check_allowed=False),
    "agent_auth.change_password": Entry(AGENTS),
    "counter.home": Entry(AGENTS),
    "counter.drawer_page": Entry(AGENTS),
    "counter.cash_in": Entry(AGENTS, body={"phone": Obj("phone"), "amount": "100000"}),
    "counter.upload": Entry(AGENTS),
    "counter.decode_frame": Entry(AGENTS),
    "counter.open_drawer": Entry(AGENTS, body={"total": "1000000"}),
    "counter.close_drawer": Entry(AGENTS),
    "counter.request_float": Entry(AGENTS),
    "counter.scan": Entry(AGENTS, body={"ma": Obj("code_token")}),
    "counter.fallback": Entry(AGENTS),
    "counter.voucher_fallback": Entry(AGENTS),
    "counter.receipt": Entry(
        R({"agent", "supervisor"}),
        R({"other_agent", "other_supervisor"}),
        args={"operation_id": Obj("operation")},
    ),
    "counter.statement": Entry(
        R({"agent", "supervisor"}),
        R({"other_agent", "other_supervisor"}),
        args={"drawer_id": Obj("drawer")},
    ),
    "counter.verify": Entry(R({"agent"}), R({"other_agent"}), args={"ticket": Obj("ticket")}),
    "counter.check_identity": Entry(
        R({"agent"}),
        R({"other_agent"}),
        args={"ticket": Obj("ticket")},
        body={"bon_so_cuoi": Obj("last4")},
    ),
    "counter.pay": Entry(
        R({"agent"}),
        R({"other_agent"}),
        args={"ticket": Obj("ticket")},
        body={"bon_so_cuoi": Obj("last4"), "khop_khuon_mat": "co"},
    ),
    "counter.request_approval": Entry(
        R({"agent"}), R({"other_agent"}), args={"ticket": Obj("ticket")}
    ),
    "counter.verify_citizen": Entry(AGENTS, AGENTS, args={"citizen_id": Obj("unverified_citizen")}),
    # --- Supervisors -----------------------------------------------------------------------------
    "supervisor.home": Entry(SUPERVISORS),
    "supervisor.new_agent": Entry(SUPERVISORS),
    "supervisor.decide": Entry(
        R({"supervisor"}),
        R({"other_supervisor"}),
        args={"approval_id": Obj("approval")},
        body={"quyet_dinh": "duyet"},
    ),
    "supervisor.statement": Entry(
        R({"supervisor"}), R({"other_supervisor"}), args={"drawer_id": Obj("drawer")}
    ),
    "supervisor.agent": Entry(
        R({"supervisor"}), R({"other_supervisor"}), args={"agent_id": Obj("agent")}
    ),
    "supervisor.reset_totp": Entry(
        R({"supervisor"}), R({"other_supervisor"}), args={"agent_id": Obj("agent")}
    ),
    "supervisor.deactivate": Entry(
        R({"supervisor"}), R({"other_supervisor"}), args={"agent_id": Obj("agent")}
    ),
    "supervisor.reactivate": Entry(
        R({"supervisor"}), R({"other_supervisor"}), args={"agent_id": Obj("agent")}
    ),
    # --- Officials: sign-in, home, staff ---------------------------------------------------------
    "official_auth.sign_in": public(),
    "official_auth.sign_out": public(fresh_session=True),
    "official_auth.totp": public(check_allowed=False, note="only during a sign-in"),
    "official_auth.enrol": Entry(OFFICIALS, check_allowed=False),
    "official_auth.enrol_qr": Entry(OFFICIALS, check_allowed=False),
    "official_auth.change_password": Entry(OFFICIALS),
    "community.home": Entry(OFFICIALS),
    "community.staff_list": Entry(MANAGERS),
    "community.staff_new": Entry(MANAGERS),
    "community.staff_detail": Entry(EDIT_C, EDIT_C2, args={"official_id": Obj("official")}),
    "community.staff_villages": Entry(EDIT_C, EDIT_C2, args={"official_id": Obj("official")}),
    "community.staff_active": Entry(EDIT_C, EDIT_C2, args={"official_id": Obj("official")}),
    "community.staff_reset_totp": Entry(EDIT_C, EDIT_C2, args={"official_id": Obj("official")}),
    # --- Officials: villages and households ------------------------------------------------------
    "households.villages": Entry(OFFICIALS, check_allowed=False),
    "households.add_village_page": Entry(MANAGERS, body={"name": "Thôn Mới"}),
    "households.rename_village_page": Entry(
        EDIT_C, EDIT_C2, args={"village_id": Obj("village")}, body={"name": "Thôn Đổi Tên"}
    ),
    "households.household_list": Entry(OFFICIALS, check_allowed=False),
    "households.new_household": Entry(
        WORKERS,
        WORKERS,
        post_own=WORK_V1,
        post_other=WORK_V3,
        body={"village": Obj("village"), "head_name": "Trần Văn Tư", "address": "Số 9"},
    ),
    "households.household": Entry(SEE_V1, SEE_C2, args={"household_id": Obj("household")}),
    "households.visit": Entry(WORK_V1, WORK_V3, args={"household_id": Obj("household")}),
    "households.add_person_page": Entry(WORK_V1, WORK_V3, args={"household_id": Obj("household")}),
    "households.person": Entry(SEE_V1, SEE_C2, args={"person_id": Obj("person")}),
    "households.open_account": Entry(WORK_V1, WORK_V3, args={"person_id": Obj("person")}),
    "households.reissue_code": Entry(WORK_V1, WORK_V3, args={"person_id": Obj("person")}),
    "households.verify_account": Entry(WORK_V1, WORK_V3, args={"person_id": Obj("person")}),
    # --- Officials: welfare ----------------------------------------------------------------------
    "welfare.programmes": Entry(WELFARE_READERS),
    "welfare.create_programme": Entry(MANAGERS, body={"name": "Chương trình mới"}),
    "welfare.programme": Entry(READ_C, READ_C2, args={"programme_id": Obj("programme")}),
    "welfare.record_funding": Entry(
        EDIT_C,
        EDIT_C2,
        args={"programme_id": Obj("programme")},
        body={"amount": "1000000", "reference": "Lệnh chi 2"},
    ),
    "welfare.create_cycle": Entry(
        EDIT_C,
        EDIT_C2,
        args={"programme_id": Obj("programme")},
        body={"label": "Tháng 2", "validity_days": "30"},
    ),
    "welfare.cycle": Entry(READ_C, READ_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.export_rows": Entry(READ_C, READ_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.voucher_slips": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.upload_list": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.submit": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.return_list": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.approve": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    "welfare.close": Entry(EDIT_C, EDIT_C2, args={"cycle_id": Obj("cycle")}),
    # --- Officials: adoption indicators ----------------------------------------------------------
    "adoption.index": Entry(OFFICIALS, check_allowed=False),
    "adoption.definitions_page": Entry(OFFICIALS),
    "adoption.commune_dashboard": Entry(SEE_C, SEE_C2, args={"commune_code": Obj("commune")}),
    "adoption.commune_report": Entry(SEE_C, SEE_C2, args={"commune_code": Obj("commune")}),
    "adoption.commune_csv": Entry(SEE_C, SEE_C2, args={"commune_code": Obj("commune")}),
    "adoption.commune_xlsx": Entry(SEE_C, SEE_C2, args={"commune_code": Obj("commune")}),
    "adoption.targets": Entry(
        SEE_C,
        SEE_C2,
        post_own=EDIT_C,
        post_other=EDIT_C2,
        args={"commune_code": Obj("commune")},
    ),
    "adoption.province_view": Entry(
        R({"province_official", "admin"}),
        R({"other_province_official", "admin"}),
        args={"province_code": Obj("province")},
    ),
    "adoption.province_csv": Entry(
        R({"province_official", "admin"}),
        R({"other_province_official", "admin"}),
        args={"province_code": Obj("province")},
    ),
    "adoption.province_xlsx": Entry(
        R({"province_official", "admin"}),
        R({"other_province_official", "admin"}),
        args={"province_code": Obj("province")},
    ),
    # --- JSON API --------------------------------------------------------------------------------
    "api.verify_code_presented": api(_API_AGENT, _API_AGENT, body={"token": Obj("code_token")}),
    "api.redeem_code": api(
        _API_AGENT,
        NOBODY,
        body={"ticket": Obj("api_ticket"), "last4": Obj("last4"), "face_matched": True},
    ),
    "api.request_payout_approval": api(_API_AGENT, NOBODY, body={"ticket": Obj("api_ticket")}),
    "api.cash_in": api(
        _API_AGENT, _API_AGENT, body={"citizen_id": Obj("citizen"), "amount_vnd": 100_000}
    ),
    "api.create_withdrawal_code": api(_API_CODES, _API_AGENT, body=_ON_BEHALF),
    "api.create_payment_code": api(
        _API_CODES,
        _API_AGENT,
        body={**_ON_BEHALF, "biller_id": Obj("biller"), "bill_reference": "PE0001"},
    ),
    "api.wallet_balance": api(_API_SYSTEM, NOBODY, args={"citizen_id": Obj("citizen")}),
    "api.wallet_statement": api(_API_SYSTEM, NOBODY, args={"citizen_id": Obj("citizen")}),
    "api.welfare_cycle": api(_API_SYSTEM, NOBODY, args={"cycle_id": Obj("cycle")}),
    "api.commune_indicators": api(
        R({"api_system", "api_system_other_scope"}),
        NOBODY,
        args={"commune_code": Obj("commune")},
        check_allowed=False,
    ),
}
