"""The `community` blueprint's home page and staff pages (``/quan-ly``).

A commune official creates the community team members of their commune, gives them villages,
deactivates them and resets their authenticator; an admin does the same for officials of every
role. Who may manage whom is `kiosk.community.access.can_manage_official`: a page for somebody
the official may not manage answers 404, as if there were nobody.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from kiosk.auth.sessions import utc_now
from kiosk.auth.staff import PASSWORD_LENGTH_MIN_CHARS
from kiosk.community import official_area_links
from kiosk.community.access import (
    can_manage_official,
    current_official,
    official_required,
    place_of,
    roles_creatable_by,
)
from kiosk.community.models import Official, OfficialRole
from kiosk.community.staff import (
    StaffRefused,
    assign_villages,
    assigned_village_ids,
    create_official,
    list_officials,
    reset_official_totp,
    role_label,
    set_official_active,
)
from kiosk.community.villages import villages_of_commune
from kiosk.database import get_session
from kiosk.places.models import Commune, Province

blueprint = Blueprint("community", __name__, url_prefix="/quan-ly")

Page = str | tuple[str, int]
# Commune officials and admins manage staff (admins pass every role check).
STAFF_MANAGERS = (OfficialRole.COMMUNE_OFFICIAL,)


@blueprint.app_template_global()
def official_role_label(role: str) -> str:
    return role_label(role)


@blueprint.get("/")
@official_required()
def home() -> Page:
    official = current_official()
    return render_template(
        "commune/home.html",
        official=official,
        links=official_area_links(),
    )


# --- Staff --------------------------------------------------------------------------------------


@blueprint.get("/nhan-su")
@official_required(*STAFF_MANAGERS)
def staff_list() -> Page:
    official = current_official()
    db = get_session()
    # A commune official sees the people of their commune; an admin sees everybody.
    commune_code = None if official.role == OfficialRole.ADMIN else official.commune_code
    people = list_officials(db, commune_code=commune_code)
    return render_template(
        "commune/staff/list.html",
        people=people,
        places=_place_names(db, people),
        manageable={person.id for person in people if can_manage_official(official, person)},
    )


@blueprint.route("/nhan-su/moi", methods=["GET", "POST"])
@official_required(*STAFF_MANAGERS)
def staff_new() -> Page | BaseResponse:
    official = current_official()
    if request.method == "GET":
        return _new_page({}, {})
    form = request.form.to_dict()
    db = get_session()
    roles = roles_creatable_by(official)
    try:
        role = OfficialRole(form.get("role", ""))
    except ValueError:
        role = roles[0]
    if role not in roles:
        abort(403)
    if form.get("password_again", "") != form.get("password", ""):
        message = _("Hai lần nhập mật khẩu không giống nhau. Hãy nhập lại.")
        return _new_page(form, {"password_again": message}, 422)
    # A commune official's people belong to their own commune, whatever the form says.
    admin = official.role == OfficialRole.ADMIN
    try:
        created = create_official(
            db,
            username=form.get("username", ""),
            full_name=form.get("full_name", ""),
            password=form.get("password", ""),
            role=role,
            commune_code=form.get("commune_code") if admin else official.commune_code,
            province_code=form.get("province_code") if admin else None,
            created_by=official.principal,
            now=utc_now(),
        )
        if created.role == OfficialRole.TEAM_MEMBER:
            assign_villages(
                db,
                created,
                _village_ids(request.form.getlist("village")),
                assigned_by=official.principal,
            )
    except StaffRefused as refused:
        # The error status rolls the request back: no account without its villages.
        return _new_page(form, {refused.field: refused.message}, 422)
    flash(
        _(
            "Đã tạo tài khoản %(username)s. Hãy trao mật khẩu tạm tận tay.",
            username=created.username,
        )
    )
    return redirect(url_for("community.staff_detail", official_id=created.id))


def _village_ids(raw: list[str]) -> list[int]:
    return [int(value) for value in raw if value.isascii() and value.isdigit()][:500]


def _new_page(form: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Page:
    official = current_official()
    villages = (
        villages_of_commune(get_session(), official.commune_code)
        if official.commune_code is not None
        else []
    )
    shown = {key: value for key, value in form.items() if "password" not in key}
    page = render_template(
        "commune/staff/new.html",
        form=shown,
        errors=errors,
        roles=roles_creatable_by(official),
        admin=official.role == OfficialRole.ADMIN,
        villages=villages,
        chosen=set(_village_ids(request.form.getlist("village"))),
        password_length_min=PASSWORD_LENGTH_MIN_CHARS,
    )
    return page, status


def _managed(official_id: int) -> Official:
    """The official with this id, if the signed-in official manages them; 404 otherwise."""
    member = get_session().get(Official, official_id)
    if member is None or not can_manage_official(current_official(), member):
        abort(404)
    return member


@blueprint.get("/nhan-su/<int:official_id>")
@official_required(*STAFF_MANAGERS)
def staff_detail(official_id: int) -> Page:
    return _detail_page(_managed(official_id), {})


def _place_names(db: Session, people: Sequence[Official]) -> dict[int, str]:
    """Each official's commune or province by name (one query for each kind of place)."""
    communes = {person.commune_code for person in people if person.commune_code}
    provinces = {person.province_code for person in people if person.province_code}
    commune_names = _names(db, Commune, communes)
    province_names = _names(db, Province, provinces)
    names: dict[int, str] = {}
    for person in people:
        if person.commune_code:
            names[person.id] = commune_names.get(person.commune_code, person.commune_code)
        elif person.province_code:
            names[person.id] = province_names.get(person.province_code, person.province_code)
    return names


def _names(db: Session, place: type[Commune | Province], codes: set[str]) -> dict[str, str]:
    query = select(place.code, place.name).where(place.code.in_(codes))
    return {code: name for code, name in db.execute(query)}


def _detail_page(member: Official, errors: Mapping[str, str], status: int = 200) -> Page:
    db = get_session()
    team_member = member.role == OfficialRole.TEAM_MEMBER
    villages = (
        villages_of_commune(db, member.commune_code)
        if team_member and member.commune_code is not None
        else []
    )
    page = render_template(
        "commune/staff/detail.html",
        member=member,
        place=place_of(db, member),
        team_member=team_member,
        villages=villages,
        assigned=assigned_village_ids(db, member.id),
        errors=errors,
    )
    return page, status


@blueprint.post("/nhan-su/<int:official_id>/thon")
@official_required(*STAFF_MANAGERS)
def staff_villages(official_id: int) -> Page | BaseResponse:
    member = _managed(official_id)
    db = get_session()
    try:
        assign_villages(
            db,
            member,
            _village_ids(request.form.getlist("village")),
            assigned_by=current_official().principal,
        )
    except StaffRefused as refused:
        return _detail_page(member, {refused.field: refused.message}, 422)
    flash(_("Đã lưu các thôn, tổ dân phố được giao."))
    return redirect(url_for("community.staff_detail", official_id=member.id))


@blueprint.post("/nhan-su/<int:official_id>/trang-thai")
@official_required(*STAFF_MANAGERS)
def staff_active(official_id: int) -> BaseResponse:
    member = _managed(official_id)
    active = request.form.get("active") == "1"
    set_official_active(
        get_session(), member, active, by=current_official().principal, now=utc_now()
    )
    if active:
        flash(_("Đã mở lại tài khoản %(username)s.", username=member.username))
    else:
        flash(
            _(
                "Đã khoá tài khoản %(username)s. Mọi phiên đăng nhập đã kết thúc.",
                username=member.username,
            )
        )
    return redirect(url_for("community.staff_detail", official_id=member.id))


@blueprint.post("/nhan-su/<int:official_id>/xac-thuc")
@official_required(*STAFF_MANAGERS)
def staff_reset_totp(official_id: int) -> BaseResponse:
    member = _managed(official_id)
    reset_official_totp(get_session(), member, by=current_official().principal, now=utc_now())
    flash(
        _(
            "Đã xoá xác thực hai bước của %(username)s. Lần đăng nhập tới, họ sẽ cài lại trên "
            "điện thoại mới.",
            username=member.username,
        )
    )
    return redirect(url_for("community.staff_detail", official_id=member.id))
