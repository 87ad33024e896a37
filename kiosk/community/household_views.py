"""The `households` blueprint (``/quan-ly``): villages, households and their people, each
person's checklist, door-to-door visits, and accounts opened on a person's behalf.

Who may do what is `kiosk.community.access` and `kiosk.community.villages.can_see_village`: a
team member works in the villages assigned to them, a commune official in every village of the
commune, a province official only reads, and anybody else gets 403. Each view parses the form,
checks access, calls one operation and renders; a refused form answers 4xx, so the request's
transaction rolls back and nothing half-done is stored.

The visit form works as a plain form; with JavaScript (``visit.js``) it is sent with fetch and,
when the network is down, kept on the phone and sent again later. Such a request asks for JSON
(``Accept: application/json``) and gets the same answers as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _  # type: ignore[import-untyped]
from flask_babel import lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from kiosk.auth.sessions import utc_now
from kiosk.citizen_id import mask_citizen_id_last4
from kiosk.citizens.pin_setup import IssuedPinSetupCode
from kiosk.community import accounts, add_area_link
from kiosk.community.access import (
    can_edit_commune,
    can_see_commune,
    can_work_in_village,
    current_official,
    official_required,
)
from kiosk.community.checklist import (
    EVIDENCE_LABELS,
    PEOPLE_EVIDENCE,
    STATUS_LABELS,
    STEP_LABELS,
    Outcome,
    entries_of,
    progress_of,
    steps_for,
)
from kiosk.community.households import (
    AlreadyRecordedOtherwise,
    HouseholdRefused,
    add_person,
    age_on,
    households_page,
    members_of,
    register_household,
)
from kiosk.community.models import (
    ChecklistStep,
    Evidence,
    Household,
    Official,
    OfficialRole,
    Person,
    StepStatus,
    Village,
)
from kiosk.community.villages import (
    VillageRefused,
    add_village,
    can_see_village,
    rename_village,
    villages_for,
    villages_of_commune,
)
from kiosk.community.visits import (
    VisitIdConflict,
    VisitRefused,
    answer_field,
    local_input_value,
    new_visit_id,
    submit_visit,
    visits_of_household,
)
from kiosk.database import get_session
from kiosk.formatting import local_date, local_today
from kiosk.places.models import Commune

blueprint = Blueprint("households", __name__, url_prefix="/quan-ly")

Page = str | tuple[str, int]
Answer = Page | BaseResponse | tuple[BaseResponse, int]
WORKERS = (OfficialRole.TEAM_MEMBER, OfficialRole.COMMUNE_OFFICIAL)
JSON = "application/json"


def init_app(app: Flask) -> None:
    """Register the blueprint and its links in the officials' navigation."""
    app.register_blueprint(blueprint)
    add_area_link(app, "households.household_list", lazy_gettext("Hộ gia đình"))
    add_area_link(app, "households.villages", lazy_gettext("Thôn, tổ dân phố"))


@blueprint.app_template_global()
def checklist_labels() -> dict[str, Any]:
    return {"steps": STEP_LABELS, "statuses": STATUS_LABELS, "evidence": EVIDENCE_LABELS}


# --- Loading with access checks -----------------------------------------------------------------


def _household(household_id: uuid.UUID, *, work: bool) -> Household:
    """The household if the official may see it (``work``: change it); 404 or 403 otherwise."""
    db = get_session()
    household = db.get(Household, household_id)
    if household is None:
        abort(404)
    _check_village(db, household.village_id, work=work)
    return household


def _person(person_id: uuid.UUID, *, work: bool) -> tuple[Person, Household]:
    db = get_session()
    person = db.get(Person, person_id)
    if person is None:
        abort(404)
    return person, _household(person.household_id, work=work)


def _check_village(db: Session, village_id: int, *, work: bool) -> None:
    official = current_official()
    allowed = (
        can_work_in_village(db, official, village_id)
        if work
        else can_see_village(db, official, village_id)
    )
    if not allowed:
        abort(403)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def _workable_villages(db: Session, official: Official) -> list[Village]:
    return [
        village
        for village in villages_for(db, official)
        if official.role != OfficialRole.PROVINCE_OFFICIAL
        and can_work_in_village(db, official, village.id)
    ]


# --- Villages -----------------------------------------------------------------------------------


def _village_commune(official: Official) -> str | None:
    """The commune whose villages are shown: the official's own, or ``?xa=`` for the others."""
    if official.commune_code is not None:
        return official.commune_code
    code = request.values.get("xa", "").strip()
    return code or None


@blueprint.get("/thon")
@official_required()
def villages() -> Page:
    return _villages_page({}, {})


def _villages_page(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Page:
    official = current_official()
    db = get_session()
    commune_code = _village_commune(official)
    commune = None if commune_code is None else db.get(Commune, commune_code)
    if commune_code is not None and (
        commune is None or not can_see_commune(official, commune_code, session=db)
    ):
        abort(403 if commune is not None else 404)
    if official.role == OfficialRole.TEAM_MEMBER:
        shown = villages_for(db, official)
    elif commune is not None:
        shown = villages_of_commune(db, commune.code)
    else:
        shown = []
    page = render_template(
        "commune/villages/list.html",
        commune=commune,
        villages=shown,
        can_edit=commune is not None and can_edit_commune(official, commune.code),
        form=form,
        errors=errors,
    )
    return page, status


@blueprint.post("/thon")
@official_required(OfficialRole.COMMUNE_OFFICIAL)
def add_village_page() -> Page | BaseResponse:
    official = current_official()
    commune_code = _village_commune(official)
    if commune_code is None or not can_edit_commune(official, commune_code):
        abort(403)
    db = get_session()
    if db.get(Commune, commune_code) is None:
        abort(404)
    form = request.form.to_dict()
    try:
        village = add_village(
            db,
            commune_code=commune_code,
            name=form.get("name", ""),
            added_by=official.principal,
            now=utc_now(),
        )
    except VillageRefused as refused:
        return _villages_page(form, {"name": refused.message}, 422)
    flash(_("Đã thêm “%(name)s”.", name=village.name))
    return redirect(url_for("households.villages", xa=_xa(official, commune_code)))


@blueprint.post("/thon/<int:village_id>")
@official_required(OfficialRole.COMMUNE_OFFICIAL)
def rename_village_page(village_id: int) -> Page | BaseResponse:
    official = current_official()
    db = get_session()
    village = db.get(Village, village_id)
    if village is None:
        abort(404)
    if not can_edit_commune(official, village.commune_code):
        abort(403)
    form = request.form.to_dict()
    try:
        # Each village's field has a name of its own, so that its error shows beside it.
        rename_village(db, village, form.get(f"name-{village.id}", ""))
    except VillageRefused as refused:
        return _villages_page({}, {f"name-{village.id}": refused.message}, 422)
    flash(_("Đã đổi tên thành “%(name)s”.", name=village.name))
    return redirect(url_for("households.villages", xa=_xa(official, village.commune_code)))


def _xa(official: Official, commune_code: str) -> str | None:
    return None if official.commune_code is not None else commune_code


# --- Households ---------------------------------------------------------------------------------


@blueprint.get("/ho")
@official_required()
def household_list() -> Page:
    official = current_official()
    db = get_session()
    village_id = _int_arg("thon")
    if village_id is not None and not can_see_village(db, official, village_id):
        abort(403)
    result = households_page(db, official, village_id=village_id, page=_int_arg("trang") or 1)
    return render_template(
        "commune/households/list.html",
        result=result,
        villages=villages_for(db, official),
        village_id=village_id,
        can_register=bool(_workable_villages(db, official)),
    )


@blueprint.route("/ho/moi", methods=["GET", "POST"])
@official_required(*WORKERS)
def new_household() -> Page | BaseResponse:
    official = current_official()
    db = get_session()
    workable = _workable_villages(db, official)
    if request.method == "GET":
        form = {"household_id": str(uuid.uuid4()), "village": request.args.get("thon", "")}
        return _new_household_page(form, {}, workable)
    form = request.form.to_dict()
    village = None
    raw_village = form.get("village", "")
    if raw_village:
        if not (raw_village.isascii() and raw_village.isdigit() and len(raw_village) < 19):
            abort(400)
        village = db.get(Village, int(raw_village))
        if village is None or not can_work_in_village(db, official, village.id):
            abort(403)
    try:
        household = register_household(db, form, village=village, official=official, now=utc_now())
    except HouseholdRefused as refused:
        return _new_household_page(form, refused.errors, workable, _refused_status(form, refused))
    flash(_("Đã ghi hộ %(name)s. Hãy thêm các thành viên.", name=household.head_name))
    return redirect(url_for("households.add_person_page", household_id=household.id))


def _refused_status(form: dict[str, str], refused: HouseholdRefused) -> int:
    """422 for a form to fix; 409 for an id used before for other content, with a new id so
    that what was typed can be sent again as a new entry."""
    if not isinstance(refused, AlreadyRecordedOtherwise):
        return 422
    for field in ("household_id", "person_id"):
        if field in form:
            form[field] = str(uuid.uuid4())
    return 409


def _new_household_page(
    form: Mapping[str, str],
    errors: Mapping[str, str],
    workable: list[Village],
    status: int = 200,
) -> Page:
    page = render_template(
        "commune/households/new.html", form=form, errors=errors, villages=workable
    )
    return page, status


@blueprint.get("/ho/<uuid:household_id>")
@official_required()
def household(household_id: uuid.UUID) -> Page:
    db = get_session()
    found = _household(household_id, work=False)
    members = members_of(db, found.id)
    entries = entries_of(db, [person.id for person in members])
    return render_template(
        "commune/households/detail.html",
        household=found,
        village=db.get(Village, found.village_id),
        members=members,
        progress={person.id: progress_of(person, entries) for person in members},
        visits=visits_of_household(db, found.id),
        can_work=can_work_in_village(db, current_official(), found.village_id),
        today=local_today(utc_now()),
        age_on=age_on,
    )


@blueprint.route("/ho/<uuid:household_id>/them-nguoi", methods=["GET", "POST"])
@official_required(*WORKERS)
def add_person_page(household_id: uuid.UUID) -> Page | BaseResponse:
    found = _household(household_id, work=True)
    if request.method == "GET":
        first = not members_of(get_session(), found.id)
        form = {"person_id": str(uuid.uuid4()), "full_name": found.head_name if first else ""}
        return _add_person_page(found, form, {})
    form = request.form.to_dict()
    try:
        person = add_person(get_session(), found, form, official=current_official(), now=utc_now())
    except HouseholdRefused as refused:
        return _add_person_page(found, form, refused.errors, _refused_status(form, refused))
    flash(_("Đã thêm %(name)s vào hộ.", name=person.full_name))
    if request.form.get("action") == "another":
        return redirect(url_for("households.add_person_page", household_id=found.id))
    return redirect(url_for("households.household", household_id=found.id))


def _add_person_page(
    found: Household, form: Mapping[str, str], errors: Mapping[str, str], status: int = 200
) -> Page:
    page = render_template(
        "commune/households/add_person.html", household=found, form=form, errors=errors
    )
    return page, status


# --- People and their checklists ----------------------------------------------------------------


@blueprint.get("/nguoi/<uuid:person_id>")
@official_required()
def person(person_id: uuid.UUID) -> Page:
    db = get_session()
    found, household_found = _person(person_id, work=False)
    return _person_page(db, found, household_found)


def _person_page(
    db: Session,
    found: Person,
    household_found: Household,
    *,
    issued: IssuedPinSetupCode | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Page:
    entries = entries_of(db, [found.id])
    official_ids = {
        int(entry.recorded_by.split(":", 1)[1])
        for entry in entries.values()
        if entry.recorded_by.startswith("official:")
    }
    names = dict(
        db.execute(
            select(Official.id, Official.full_name).where(Official.id.in_(official_ids))
        ).all()
    )
    page = render_template(
        "commune/households/person.html",
        person=found,
        household=household_found,
        steps=steps_for(found),
        entries={step: entry for (_person_id, step), entry in entries.items()},
        recorders={f"official:{key}": name for key, name in names.items()},
        progress=progress_of(found, entries),
        citizen=accounts.account_of(db, found),
        can_work=can_work_in_village(db, current_official(), household_found.village_id),
        masked_id=None
        if found.citizen_id_last4 is None
        else mask_citizen_id_last4(found.citizen_id_last4),
        issued=issued,
        errors=errors or {},
        age=age_on(found, local_today(utc_now())),
    )
    return page, status


@blueprint.route("/nguoi/<uuid:person_id>/mo-tai-khoan", methods=["GET", "POST"])
@official_required(*WORKERS)
def open_account(person_id: uuid.UUID) -> Page | BaseResponse:
    found, household_found = _person(person_id, work=True)
    db = get_session()
    if found.citizen_id is not None:
        return redirect(url_for("households.person", person_id=found.id))
    if request.method == "GET":
        born = found.date_of_birth
        form = {
            "full_name": found.full_name,
            "sex": found.sex,
            "birth_day": "" if born is None else str(born.day),
            "birth_month": "" if born is None else str(born.month),
            "birth_year": "" if found.birth_year is None else str(found.birth_year),
        }
        return _open_account_page(found, household_found, form, {})
    form = request.form.to_dict()
    now = utc_now()
    try:
        _citizen, issued = accounts.open_account_for(
            db, found, form, official=current_official(), now=now
        )
    except accounts.AccountRefused as refused:
        return _open_account_page(found, household_found, form, refused.errors, 422)
    return _person_page(db, found, household_found, issued=issued)


def _open_account_page(
    found: Person,
    household_found: Household,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> Page:
    page = render_template(
        "commune/households/open_account.html",
        person=found,
        household=household_found,
        form=form,
        errors=errors,
        masked_id=None
        if found.citizen_id_last4 is None
        else mask_citizen_id_last4(found.citizen_id_last4),
    )
    return page, status


@blueprint.post("/nguoi/<uuid:person_id>/ma-dat-pin")
@official_required(*WORKERS)
def reissue_code(person_id: uuid.UUID) -> Page:
    found, household_found = _person(person_id, work=True)
    db = get_session()
    try:
        issued = accounts.reissue_pin_setup_code(db, found, utc_now())
    except accounts.AccountRefused as refused:
        return _person_page(db, found, household_found, errors=refused.errors, status=409)
    return _person_page(db, found, household_found, issued=issued)


@blueprint.post("/nguoi/<uuid:person_id>/xac-minh")
@official_required(*WORKERS)
def verify_account(person_id: uuid.UUID) -> Page | BaseResponse:
    found, household_found = _person(person_id, work=True)
    db = get_session()
    if request.form.get("seen_card") != "yes":
        errors = {"seen_card": _("Chỉ xác minh khi đã xem căn cước công dân và đúng người.")}
        return _person_page(db, found, household_found, errors=errors, status=422)
    try:
        accounts.verify_account_in_person(db, found, official=current_official(), now=utc_now())
    except accounts.AccountRefused as refused:
        return _person_page(db, found, household_found, errors=refused.errors, status=409)
    flash(_("Đã xác minh tài khoản của %(name)s.", name=found.full_name))
    return redirect(url_for("households.person", person_id=found.id))


# --- Visits -------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return JSON in request.headers.get("Accept", "")


@blueprint.route("/ho/<uuid:household_id>/tham", methods=["GET", "POST"])
@official_required(*WORKERS)
def visit(household_id: uuid.UUID) -> Answer:
    found = _household(household_id, work=True)
    db = get_session()
    now = utc_now()
    if request.method == "GET":
        form = {"visit_id": str(new_visit_id()), "visited_at": local_input_value(now)}
        return _visit_page(db, found, form, {})
    form = request.form.to_dict()
    try:
        result = submit_visit(db, found, form, official=current_official(), now=now)
    except VisitRefused as refused:
        status = 409 if isinstance(refused, VisitIdConflict) else 422
        if _wants_json():
            kind = "conflict" if status == 409 else "invalid"
            return _json({"status": kind, "errors": refused.errors}, status)
        if status == 409:
            # What was typed is shown again, to be sent as a new visit.
            form["visit_id"] = str(new_visit_id())
        return _visit_page(db, found, form, refused.errors, status)
    if result.created:
        message = _("Đã lưu chuyến thăm hộ %(name)s.", name=found.head_name)
    else:
        message = _("Chuyến thăm này đã được lưu trước đó; không lưu thêm lần nữa.")
    notes = _outcome_notes(result.kept(Outcome.KEPT_SYSTEM), result.kept(Outcome.KEPT_NEWER))
    next_url = url_for("households.household", household_id=found.id)
    if _wants_json():
        if request.headers.get("X-Visit-Live") == "1":
            # Sent from the open form: the page the script goes to next says so.
            flash(message)
        return _json(
            {
                "status": "stored" if result.created else "already_stored",
                "visit_id": str(result.visit.id),
                "message": message,
                "notes": notes,
                "next": next_url,
            },
            200,
        )
    flash(message)
    for note in notes:
        flash(note)
    return redirect(next_url)


def _json(body: Mapping[str, Any], status: int) -> tuple[BaseResponse, int]:
    return jsonify(body), status


def _outcome_notes(
    kept_system: list[tuple[uuid.UUID, ChecklistStep]],
    kept_newer: list[tuple[uuid.UUID, ChecklistStep]],
) -> list[str]:
    notes = []
    if kept_system:
        notes.append(
            _(
                "%(count)d câu trả lời không thay đổi bước đã được hệ thống xác nhận.",
                count=len(kept_system),
            )
        )
    if kept_newer:
        notes.append(
            _(
                "%(count)d câu trả lời cũ hơn câu trả lời của một chuyến thăm sau, nên giữ câu "
                "trả lời mới hơn.",
                count=len(kept_newer),
            )
        )
    return notes


def _visit_page(
    db: Session,
    found: Household,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> Page:
    members = members_of(db, found.id)
    entries = entries_of(db, [person.id for person in members])
    page = render_template(
        "commune/households/visit.html",
        household=found,
        members=members,
        steps_of={person.id: steps_for(person) for person in members},
        entries=entries,
        form=form,
        errors=errors,
        field=answer_field,
        statuses=list(StepStatus),
        people_evidence=PEOPLE_EVIDENCE,
        system=Evidence.SYSTEM.value,
        local_date=local_date,
    )
    return page, status
